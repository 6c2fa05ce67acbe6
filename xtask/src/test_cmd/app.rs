//! The service's pytest suite, in a venv made by uv from its hash-checked lock.

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;

use crate::ctx::Ctx;
use crate::output::{progress, warning};
use crate::process::Cmd;
use crate::util::{self, CheckFailed};

/// pytest in `target/app-venv`, made by uv from `app/requirements-dev.lock` with hashes checked;
/// as root, as `nobody` in `target/app-venv-nobody` (see [`Nobody`]).
pub(crate) fn run(ctx: &Ctx) -> Result<()> {
    if which::which("uv").is_err() {
        bail!("uv is not on PATH: install it (`pip install uv`) to run the app tests, or pass --skip-app");
    }
    let nobody = Nobody::find();
    let venv = util::host_join(
        &ctx.root,
        match nobody {
            Some(_) => "target/app-venv-nobody",
            None => "target/app-venv",
        },
    );
    let python: Utf8PathBuf = if cfg!(windows) {
        util::host_join(&venv, "Scripts/python.exe")
    } else {
        util::host_join(&venv, "bin/python")
    };
    let lock = util::host_join(&ctx.root, "app/requirements-dev.lock");
    progress!(
        "app tests: venv {} from {}",
        util::shown(&venv),
        util::shown(&lock)
    );
    let mut uv_venv = vec!["venv", "--quiet", "--allow-existing"];
    if let Some(nobody) = &nobody {
        uv_venv.extend(["--python", nobody.interpreter.as_str()]);
    }
    uv_venv.push(venv.as_str());
    Cmd::new("uv")
        .args(uv_venv)
        .dir(&ctx.root)
        .run()
        .context("creating the app test venv with uv")?;
    Cmd::new("uv")
        .args([
            "pip",
            "sync",
            "--quiet",
            "--python",
            python.as_str(),
            "--require-hashes",
        ])
        .arg(&lock)
        .dir(&ctx.root)
        .run()
        .context("installing the app's locked dev requirements")?;
    let pytest = [python.as_str(), "-m", "pytest", "app/tests"];
    let pytest = match &nobody {
        None => {
            progress!("pytest app/tests");
            Cmd::new(pytest[0]).args(&pytest[1..])
        }
        Some(nobody) => {
            progress!(
                "pytest app/tests as nobody (root ignores file permissions: the tests of them \
                 would skip)"
            );
            nobody.command(&pytest)
        }
    };
    let status = pytest.dir(&ctx.root).stream().context("running pytest")?;
    if !status.success() {
        return Err(CheckFailed("app tests failed".into()).into());
    }
    Ok(())
}

/// Running the app tests as `nobody` when `cargo xtask test` runs as root (CI does). The app's
/// tests are written for a non-root user — a root process ignores file permissions, so the tests
/// of a read-only data directory skip as root — and the service itself never runs as root. On
/// Linux, `setpriv` (util-linux) drops to nobody, with an interpreter nobody can run (uv may
/// pick one under /root otherwise). Where that is not possible, the tests run as root, with a
/// warning.
struct Nobody {
    /// `setpriv --reuid=nobody --regid=GID --clear-groups --`
    prefix: Vec<String>,
    /// The base interpreter of the venv.
    interpreter: String,
}

impl Nobody {
    fn find() -> Option<Nobody> {
        if !cfg!(target_os = "linux") {
            return None;
        }
        if !util::is_root() {
            return None;
        }
        let warn = |why: &str| {
            warning!("the app tests run as root: {why}; the tests of file permissions skip");
            None
        };
        let Ok(setpriv) = which::which("setpriv") else {
            return warn("setpriv is not installed (util-linux)");
        };
        let Ok(gid) = Cmd::new("id").args(["-g", "nobody"]).read() else {
            return warn("there is no user `nobody`");
        };
        let prefix = vec![
            setpriv.to_string_lossy().into_owned(),
            "--reuid=nobody".into(),
            format!("--regid={}", gid.trim()),
            "--clear-groups".into(),
            "--".into(),
        ];
        let mut candidates: Vec<String> = which::which_all("python3")
            .into_iter()
            .flatten()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        candidates.push("/usr/bin/python3".into());
        // The tests start the interpreter again (subprocess): nobody must be able to run it.
        let runs = |python: &String| {
            let (program, mut args) = (&prefix[0], prefix[1..].to_vec());
            args.extend([
                python.clone(),
                "-c".into(),
                "import os, subprocess, sys; \
                 subprocess.run([os.path.realpath(sys.executable), '-c', ''], check=True)"
                    .into(),
            ]);
            Cmd::new(program).args(args).run().is_ok()
        };
        match candidates.into_iter().find(runs) {
            Some(interpreter) => Some(Nobody {
                prefix,
                interpreter,
            }),
            None => warn("no python3 on PATH that nobody may run"),
        }
    }

    /// `argv` as nobody: no bytecode or pytest cache written into the root-owned checkout.
    fn command(&self, argv: &[&str]) -> Cmd {
        Cmd::new(&self.prefix[0])
            .args(&self.prefix[1..])
            .args(argv)
            .args(["-p", "no:cacheprovider"])
            .env("PYTHONDONTWRITEBYTECODE", "1")
    }
}
