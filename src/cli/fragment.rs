//! `pulse-fragment` (not yet written).

pub fn main() -> ! {
    crate::error::exit_with(
        "pulse-fragment",
        Err(crate::error::Error::Runtime("not yet written".into())),
    )
}
