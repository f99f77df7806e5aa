//! `prottrans devices`: the backends compiled into this build and whether they run here.

pub fn run() -> anyhow::Result<()> {
    for backend in prottrans::backend::BACKENDS.iter().filter(|b| !b.compiled) {
        println!(
            "{:<11} not compiled in (cargo feature `{}`): {}",
            backend.name, backend.feature, backend.description
        );
    }
    for found in prottrans::backend::survey() {
        let backend = found.backend;
        let state = match &found.usable {
            Ok(()) => "works".to_string(),
            Err(reason) => format!("cannot run here: {reason}"),
        };
        println!(
            "{:<11} compiled in (cargo feature `{}`): {}; {state}",
            backend.name, backend.feature, backend.description
        );
        if found.devices.is_empty() {
            println!("{:<11}   no devices found", "");
        }
        for device in &found.devices {
            println!("{:<11}   {device}", "");
        }
    }
    Ok(())
}
