//! Drives a binary (the `processor`) as a child process: env, captured log lines, signals.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! let mut child = test_support::ChildProcess::spawn(
//!     "/path/to/processor", // env!("CARGO_BIN_EXE_processor") in the processor's tests
//!     [("LOG_FORMAT", "json"), ("METRICS_PORT", "0")],
//! );
//! let line = child.wait_for_line(|l| l.contains("listening"), Duration::from_secs(10)).await;
//! child.sigterm();
//! let status = child.wait(Duration::from_secs(10)).await;
//! # let _ = (line, status);
//! # }
//! ```
//!
//! The child gets a clean environment (only `PATH`, `HOME`, `TMPDIR`, `RUST_BACKTRACE` pass
//! through, plus the given map) and runs in a fresh temporary working directory, so neither a
//! developer's shell variables nor a `.env` file leak into a test. It is SIGKILLed when the
//! [`ChildProcess`] is dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long an exit is held back for the output readers to reach end of file. They normally
/// do at once (the pipes close with the child); only a grandchild still holding a pipe open
/// keeps them reading, and then the exit is reported anyway once this has passed.
const OUTPUT_GRACE: Duration = Duration::from_secs(5);

/// Which stream a captured line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One captured output line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Where it was written.
    pub stream: Stream,
    /// The text, without the line end.
    pub text: String,
}

#[derive(Debug, Default)]
struct Captured {
    lines: Mutex<Vec<Line>>,
    notify: Notify,
}

/// A running (or exited) child process with captured output.
#[derive(Debug)]
pub struct ChildProcess {
    program: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    workdir: PathBuf,
    child: Child,
    /// The stdout and stderr readers of the current run, until `collect_output` took them.
    readers: Vec<JoinHandle<()>>,
    /// When [`Self::try_status`] first saw the current run exited, for [`OUTPUT_GRACE`].
    exited_at: Option<Instant>,
    captured: Arc<Captured>,
    /// Index of the first line [`Self::wait_for_line`] has not consumed yet.
    cursor: usize,
}

impl ChildProcess {
    /// Spawns `program` with `env` (on top of a minimal pass-through environment) in a fresh
    /// temporary working directory. Must be called inside a tokio runtime.
    pub fn spawn<K, V>(program: impl AsRef<Path>, env: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self::spawn_with_args(program, Vec::<String>::new(), env)
    }

    /// [`Self::spawn`] with command-line arguments.
    pub fn spawn_with_args<A, K, V>(
        program: impl AsRef<Path>,
        args: impl IntoIterator<Item = A>,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        A: Into<String>,
        K: Into<String>,
        V: Into<String>,
    {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        let env: BTreeMap<String, String> =
            env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        let workdir = std::env::temp_dir().join(format!(
            "test-support-child-{}-{}",
            std::process::id(),
            crate::postgres::random_suffix()
        ));
        std::fs::create_dir_all(&workdir)
            .unwrap_or_else(|error| panic!("test-support: mkdir {}: {error}", workdir.display()));
        let program = program.as_ref().to_path_buf();
        let captured = Arc::new(Captured::default());
        let (child, readers) = start(&program, &args, &env, &workdir, &captured);
        Self {
            program,
            args,
            env,
            workdir,
            child,
            readers,
            exited_at: None,
            captured,
            cursor: 0,
        }
    }

    /// The child's pid (`None` once it has been reaped).
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// The environment given at spawn time (not the pass-through part).
    pub fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// Every line captured so far (stdout and stderr interleaved in arrival order), across
    /// restarts.
    pub fn lines(&self) -> Vec<Line> {
        self.captured
            .lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The captured lines' text joined with newlines (for assertion messages).
    pub fn output(&self) -> String {
        self.lines()
            .into_iter()
            .map(|line| line.text)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits for the next line (after the previous match) satisfying `predicate`, on either
    /// stream; returns it. Panics after `timeout` with everything captured so far.
    pub async fn wait_for_line(
        &mut self,
        mut predicate: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.captured.notify.notified();
            {
                let lines = self
                    .captured
                    .lines
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if let Some(offset) = lines[self.cursor..].iter().position(|l| predicate(&l.text)) {
                    let found = lines[self.cursor + offset].text.clone();
                    self.cursor += offset + 1;
                    return found;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "test-support: no matching line from {} within {timeout:?}; output so far:\n{}",
                    self.program.display(),
                    self.output()
                );
            }
        }
    }

    /// Like [`Self::wait_for_line`] for JSON log lines: the first parsed object (after the
    /// previous match) satisfying `predicate`.
    pub async fn wait_for_json(
        &mut self,
        mut predicate: impl FnMut(&serde_json::Value) -> bool,
        timeout: Duration,
    ) -> serde_json::Value {
        let line = self
            .wait_for_line(
                |line| serde_json::from_str(line).is_ok_and(|value| predicate(&value)),
                timeout,
            )
            .await;
        serde_json::from_str(&line).unwrap_or(serde_json::Value::Null)
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Sends SIGINT.
    pub fn sigint(&self) {
        self.signal("INT");
    }

    /// Sends SIGKILL (a crash: no clean-up runs in the child).
    pub fn sigkill(&mut self) {
        let _ = self.child.start_kill();
    }

    fn signal(&self, name: &str) {
        if let Some(pid) = self.child.id() {
            send_signal(pid, name);
        }
    }

    /// Waits for the child to exit and for its output to be collected (up to 5 s more, in
    /// case a grandchild holds a pipe open), so [`Self::output`]
    /// then has every line; panics after `timeout` (and kills it then).
    pub async fn wait(&mut self, timeout: Duration) -> ExitStatus {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.collect_output().await;
                status
            }
            Ok(Err(error)) => panic!("test-support: waiting for the child: {error}"),
            Err(_) => {
                let _ = self.child.start_kill();
                panic!(
                    "test-support: {} did not exit within {timeout:?}; output so far:\n{}",
                    self.program.display(),
                    self.output()
                );
            }
        }
    }

    /// The exit status if the child has exited and its output has been collected, without
    /// waiting: `None` while the output readers have not reached end of file yet (for at
    /// most 5 s after the exit was first seen), so [`Self::output`] after a
    /// `Some` has every line.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().ok().flatten()?;
        let exited_at = *self.exited_at.get_or_insert_with(Instant::now);
        let collected = self.readers.iter().all(JoinHandle::is_finished);
        (collected || exited_at.elapsed() >= OUTPUT_GRACE).then_some(status)
    }

    /// Waits (at most [`OUTPUT_GRACE`]) until the current run's output readers reached end
    /// of file. Taken out of `readers` so a later call does not await them again (a
    /// `JoinHandle` must not be polled after it completed).
    async fn collect_output(&mut self) {
        let readers = std::mem::take(&mut self.readers);
        let all_done = async {
            for reader in readers {
                // A reader only ends at end of file or a read error; a panic in it has
                // already been reported by the runtime.
                let _ = reader.await;
            }
        };
        let _ = tokio::time::timeout(OUTPUT_GRACE, all_done).await;
    }

    /// Starts the program again with the same environment (and the same working directory),
    /// after killing the current child if it still runs. Captured lines are kept; the
    /// `wait_for_line` cursor moves past them.
    pub async fn restart(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill().await;
        }
        // The last run's lines must all be in before the cursor moves past them.
        self.collect_output().await;
        self.cursor = self
            .captured
            .lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        (self.child, self.readers) = start(
            &self.program,
            &self.args,
            &self.env,
            &self.workdir,
            &self.captured,
        );
        self.exited_at = None;
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.workdir);
    }
}

/// Sends signal `name` (`TERM`, `INT`, `KILL`, …) to `pid` through `kill(1)` (the workspace
/// forbids `unsafe`, and a libc binding would be one more dependency).
pub fn send_signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .arg("-s")
        .arg(name)
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
    if let Err(error) = status {
        panic!("test-support: running kill -s {name} {pid}: {error}");
    }
}

const PASS_THROUGH: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "RUST_BACKTRACE",
    "LLVM_PROFILE_FILE",
];

fn start(
    program: &Path,
    args: &[String],
    env: &BTreeMap<String, String>,
    workdir: &Path,
    captured: &Arc<Captured>,
) -> (Child, Vec<JoinHandle<()>>) {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(
            PASS_THROUGH
                .iter()
                .filter_map(|k| Some((*k, std::env::var_os(k)?))),
        )
        .envs(env)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .unwrap_or_else(|error| panic!("test-support: spawning {}: {error}", program.display()));
    let mut readers = Vec::with_capacity(2);
    if let Some(stdout) = child.stdout.take() {
        readers.push(tokio::spawn(pump(
            stdout,
            Stream::Stdout,
            Arc::clone(captured),
        )));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.push(tokio::spawn(pump(
            stderr,
            Stream::Stderr,
            Arc::clone(captured),
        )));
    }
    (child, readers)
}

async fn pump(reader: impl AsyncRead + Unpin, stream: Stream, captured: Arc<Captured>) {
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(text)) = lines.next_line().await {
        captured
            .lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Line { stream, text });
        captured.notify.notify_waiters();
    }
}
