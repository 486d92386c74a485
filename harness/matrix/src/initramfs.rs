//! The guest's initramfs: the runner as `/init`, the plan, the objects.

use std::{fs, path::Path};

use harness_protocol::{GUEST_OBJECT_DIR, GUEST_PLAN_PATH, Plan};
use harness_vm::Initramfs;

use crate::{MatrixError, io_err};

/// Where the `index`th object of the plan travels inside the guest (by
/// index: names given by path hold `/` and may repeat a file name).
fn guest_path(index: usize) -> String {
    format!("{GUEST_OBJECT_DIR}/{index}.bpf.o")
}

/// The initramfs for `plan` (objects at their host paths), with the plan's
/// objects moved to where the guest finds them.
pub fn guest_initramfs(plan: &Plan, runner: &Path) -> Result<Initramfs, MatrixError> {
    let mut guest_plan = plan.clone();
    let mut fs = Initramfs::new();
    fs.file(
        "/init",
        fs::read(runner).map_err(io_err(format!("reading {}", runner.display())))?,
        true,
    );
    for (index, o) in guest_plan.objects.iter_mut().enumerate() {
        let data = fs::read(&o.path).map_err(io_err(format!("reading {}", o.path)))?;
        o.path = guest_path(index);
        fs.file(&o.path, data, false);
    }
    fs.file(
        GUEST_PLAN_PATH,
        serde_json::to_vec(&guest_plan).expect("plans serialise"),
        false,
    );
    for d in ["/dev", "/proc", "/sys", "/tmp"] {
        fs.dir(d);
    }
    // Only runs that exec something pay for busybox.
    if runs_programs(plan) {
        harness_vm::tools::add_busybox(&mut fs).map_err(MatrixError::GuestTools)?;
    }
    Ok(fs)
}

/// Whether a case of the plan runs a program in the guest.
fn runs_programs(plan: &Plan) -> bool {
    plan.objects
        .iter()
        .flat_map(|o| &o.cases)
        .any(|c| match &c.action {
            harness_protocol::Action::Steps(s) => s
                .steps
                .iter()
                .any(|s| matches!(s, harness_protocol::Step::Exec { .. })),
            harness_protocol::Action::TestRun(_) => false,
        })
}

/// Writes the initramfs every VM of this run boots. Each run writes its own
/// file (removed when dropped), so concurrent runs in one workspace never
/// boot each other's half-written initramfs.
pub(crate) fn write(
    plan: &Plan,
    runner: &Path,
    dir: &Path,
) -> Result<tempfile::TempPath, MatrixError> {
    let initramfs = guest_initramfs(plan, runner)?;
    fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let path = own_file(dir)?;
    initramfs
        .write_to(&path)
        .map_err(io_err(format!("writing {}", path.display())))?;
    Ok(path)
}

/// A new initramfs file in `dir`, named so the sweep of a later run knows
/// whose it was (removed when dropped).
fn own_file(dir: &Path) -> Result<tempfile::TempPath, MatrixError> {
    let file = tempfile::Builder::new()
        .prefix(&harness_vm::leftovers::own_prefix(crate::INITRAMFS_KIND))
        .suffix(".cpio")
        .tempfile_in(dir)
        .map_err(io_err(format!(
            "creating an initramfs in {}",
            dir.display()
        )))?;
    Ok(file.into_temp_path())
}

/// A copy of the run's initramfs with the kernel's build config appended as
/// `/boot/config-<release>` (the kernel unpacks concatenated cpio archives
/// in order), for one VM. libbpf reads `__kconfig` externs from there.
pub(crate) fn with_kconfig(
    initramfs: &Path,
    config: &Path,
    release: &str,
    dir: &Path,
) -> Result<tempfile::TempPath, MatrixError> {
    let mut bytes =
        fs::read(initramfs).map_err(io_err(format!("reading {}", initramfs.display())))?;
    let text = fs::read(config).map_err(io_err(format!("reading {}", config.display())))?;
    let mut extra = Initramfs::new();
    extra
        .dir("boot")
        .file(&format!("boot/config-{release}"), text, false);
    bytes.extend(extra.to_bytes());
    let path = own_file(dir)?;
    fs::write(&path, bytes).map_err(io_err(format!("writing {}", path.display())))?;
    Ok(path)
}
