//! Log line formats (pulse-parse): not yet written.
