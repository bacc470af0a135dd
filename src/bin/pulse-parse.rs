fn main() {
    pulse::cli::parse::main()
}
