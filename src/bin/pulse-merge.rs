fn main() {
    pulse::cli::merge::main()
}
