//! `prottrans devices`: every backend is listed, compiled in or not, and the compiled-in ones say
//! whether they run here.

use std::process::Command;

#[test]
fn devices_lists_every_backend_and_what_runs_here() {
    let output = Command::new(env!("CARGO_BIN_EXE_prottrans"))
        .arg("devices")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    println!("{text}");
    for backend in prottrans::backend::BACKENDS {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(backend.name))
            .unwrap_or_else(|| panic!("{} is not listed:\n{text}", backend.name));
        let compiled = !line.contains("not compiled in");
        assert_eq!(compiled, backend.compiled, "{line}");
    }
    // The default build has flex, and flex runs everywhere.
    #[cfg(feature = "flex")]
    assert!(
        text.lines()
            .any(|l| l.starts_with("flex") && l.ends_with("works")),
        "{text}"
    );
}
