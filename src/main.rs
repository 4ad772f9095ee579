fn main() {
    let cli = mockimg::cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let r = rt.block_on(mockimg::cli::run(cli));
    if let Err(e) = &r {
        if mockimg::cli::interrupted(e) {
            // A blocking writer of the cancelled job may still run; once it has finished (or
            // the wait ends), remove what it wrote since.
            rt.shutdown_timeout(std::time::Duration::from_secs(20));
            mockimg::cli::remove_temp_files();
        }
    }
    if let Err(e) = r {
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
