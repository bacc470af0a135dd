fn main() {
    pulse::cli::emit::main()
}
