fn main() {
    pulse::cli::fragment::main()
}
