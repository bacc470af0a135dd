//! `pulse-emit` (not yet written).

pub fn main() -> ! {
    crate::error::exit_with(
        "pulse-emit",
        Err(crate::error::Error::Runtime("not yet written".into())),
    )
}
