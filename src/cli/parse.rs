//! `pulse-parse` (not yet written).

pub fn main() -> ! {
    crate::error::exit_with(
        "pulse-parse",
        Err(crate::error::Error::Runtime("not yet written".into())),
    )
}
