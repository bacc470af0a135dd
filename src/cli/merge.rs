//! `pulse-merge` (not yet written).

pub fn main() -> ! {
    crate::error::exit_with(
        "pulse-merge",
        Err(crate::error::Error::Runtime("not yet written".into())),
    )
}
