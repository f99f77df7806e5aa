//! Directories written beside their place and renamed into it, so that a failure leaves
//! nothing half-written.

use std::path::Path;

use crate::ImportError;

/// Writes the directory `out` through `write`, which fills a staging directory beside it;
/// with `base`, the staging directory first gets a copy of `base`'s files other than its
/// weights. The staging directory is renamed into place when `write` succeeds, so a failure
/// leaves nothing at `out`.
pub(crate) fn write_staged(
    out: &Path,
    base: Option<&Path>,
    write: impl FnOnce(&Path) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Io { path, source }
    };
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Like any new directory (0777 less the umask), not tempfile's owner-only 0700.
        builder.permissions(std::fs::Permissions::from_mode(0o777));
    }
    let staging = builder
        .prefix(".writing-")
        .tempdir_in(parent)
        .map_err(io(parent))?;
    if let Some(base) = base {
        for entry in std::fs::read_dir(base).map_err(io(base))? {
            let entry = entry.map_err(io(base))?;
            let name = entry.file_name();
            if entry.path().is_file()
                && name != crate::SAFETENSORS_FILE
                && name != crate::PYTORCH_FILE
            {
                std::fs::copy(entry.path(), staging.path().join(&name))
                    .map_err(io(&entry.path()))?;
            }
        }
    }
    write(staging.path())?;
    let staged = staging.keep();
    std::fs::rename(&staged, out).map_err(io(out))
}
