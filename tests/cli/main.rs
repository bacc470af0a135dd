//! CLI tests: one integration binary driving the real binaries.
