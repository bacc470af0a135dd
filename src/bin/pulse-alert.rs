fn main() {
    pulse::cli::alert::main()
}
