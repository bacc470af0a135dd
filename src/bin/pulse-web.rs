fn main() {
    pulse::cli::web::main()
}
