fn main() {
    let cli = mockimg::cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(mockimg::cli::run(cli)) {
        // One line: the context chain joined, most general first.
        let msg = e
            .chain()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(": ");
        eprintln!("error: {msg}");
        std::process::exit(mockimg::cli::exit_code(&e));
    }
}
