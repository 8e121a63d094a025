//! Builds started from the Images page: each one is its own
//! `boxwright … --progress json build` child process, whose JSON events are
//! kept in memory and relayed. A crash of `serve` never corrupts a build
//! (the child owns it, and its log stays in the store), and a build outlives
//! a closed browser tab.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Notify;

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// A build and everything it said.
pub struct Job {
    pub id: String,
    pub tag: Option<String>,
    pub created: u64,
    /// When the job started, for the `elapsed_ms` of an event made here.
    started: Instant,
    state: Mutex<JobState>,
    changed: Notify,
}

struct JobState {
    /// The child's JSON event lines, in order (the SSE ids are the indexes).
    events: Vec<String>,
    status: JobStatus,
    exit_code: Option<i32>,
    pid: Option<u32>,
    /// The last lines of the child's stderr (its own diagnostics).
    stderr: Vec<String>,
}

/// A job as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct JobInfo {
    pub id: String,
    pub tag: Option<String>,
    pub created: u64,
    pub status: JobStatus,
    pub exit_code: Option<i32>,
    pub events: usize,
    /// The manifest digest of a successful build.
    pub digest: Option<String>,
    /// The one-line reason of a failed build, and the failed step.
    pub error: Option<String>,
    pub failed_step: Option<u64>,
}

impl Job {
    /// Events from index `from` on, and whether the job has ended.
    pub fn events_from(&self, from: usize) -> (Vec<(usize, String)>, bool) {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let events = s
            .events
            .iter()
            .enumerate()
            .skip(from)
            .map(|(i, e)| (i, e.clone()))
            .collect();
        (events, s.status != JobStatus::Running)
    }

    /// A future that completes when something new happens (an event, the
    /// end). Create it (and `enable` it) before reading the events, so a
    /// change between the read and the wait is not missed.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Every event line, as the build's full log.
    pub fn log(&self) -> String {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = s.events.join("\n");
        out.push('\n');
        out
    }

    pub fn info(&self) -> JobInfo {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let last: Option<serde_json::Value> =
            s.events.last().and_then(|l| serde_json::from_str(l).ok());
        let (digest, error, failed_step) = match &last {
            Some(v) if v["event"] == "finished" => {
                (v["digest"].as_str().map(String::from), None, None)
            }
            Some(v) if v["event"] == "failed" => (
                None,
                v["message"].as_str().map(String::from),
                v["step"].as_u64(),
            ),
            _ => (None, s.stderr.last().cloned(), None),
        };
        JobInfo {
            id: self.id.clone(),
            tag: self.tag.clone(),
            created: self.created,
            status: s.status,
            exit_code: s.exit_code,
            events: s.events.len(),
            digest,
            error,
            failed_step,
        }
    }

    fn push(&self, line: String) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .push(line);
        self.changed.notify_waiters();
    }
}

/// The jobs of this `serve` process.
#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

/// A `failed` event in the progress schema (docs/progress-events.md), for
/// a build that ended without one of its own (cancelled, or its process
/// died): made by the progress module itself, so it is one like the others.
fn failed_event(message: &str, elapsed_ms: u64) -> String {
    crate::progress::Record {
        schema_version: crate::progress::SCHEMA_VERSION,
        time: crate::progress::rfc3339_millis(SystemTime::now()),
        elapsed_ms,
        event: crate::progress::Event::Failed {
            step: None,
            command: None,
            exit_code: None,
            message: message.to_string(),
            last_lines: Vec::new(),
        },
    }
    .to_line()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Jobs {
    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Every job, newest first.
    pub fn list(&self) -> Vec<JobInfo> {
        let mut v: Vec<JobInfo> = self
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|j| j.info())
            .collect();
        v.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
        v
    }

    /// Starts `exe args…` (a `--progress json build`) as job `id`.
    pub fn start(
        self: &Arc<Self>,
        id: String,
        tag: Option<String>,
        exe: &Path,
        args: Vec<String>,
        cleanup: PathBuf,
    ) -> std::io::Result<Arc<Job>> {
        let mut cmd = tokio::process::Command::new(exe);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: cancel signals it and its workers.
            .process_group(0)
            .kill_on_drop(false);
        let mut child = cmd.spawn()?;
        let job = Arc::new(Job {
            id: id.clone(),
            tag,
            created: now(),
            started: Instant::now(),
            state: Mutex::new(JobState {
                events: Vec::new(),
                status: JobStatus::Running,
                exit_code: None,
                pid: child.id(),
                stderr: Vec::new(),
            }),
            changed: Notify::new(),
        });
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, job.clone());
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let j = job.clone();
        tokio::spawn(async move {
            if let Some(err) = stderr {
                let j2 = j.clone();
                tokio::spawn(async move {
                    let mut lines = BufReader::new(err).lines();
                    while let Ok(Some(l)) = lines.next_line().await {
                        let mut s = j2.state.lock().unwrap_or_else(|e| e.into_inner());
                        s.stderr.push(l);
                        let n = s.stderr.len();
                        if n > 20 {
                            s.stderr.drain(..n - 20);
                        }
                    }
                });
            }
            if let Some(out) = stdout {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    if !l.trim().is_empty() {
                        j.push(l);
                    }
                }
            }
            let status = child.wait().await;
            let code = status.as_ref().ok().and_then(|s| s.code());
            let _ = std::fs::remove_dir_all(&cleanup);
            let ended_well = {
                let s = j.state.lock().unwrap_or_else(|e| e.into_inner());
                s.events
                    .last()
                    .is_some_and(|l| l.contains("\"event\":\"finished\""))
            };
            let cancelled =
                j.state.lock().unwrap_or_else(|e| e.into_inner()).status == JobStatus::Cancelled;
            let has_final = {
                let s = j.state.lock().unwrap_or_else(|e| e.into_inner());
                s.events.last().is_some_and(|l| {
                    l.contains("\"event\":\"finished\"") || l.contains("\"event\":\"failed\"")
                })
            };
            if !has_final {
                let why = if cancelled {
                    "cancelled: the build was stopped".to_string()
                } else {
                    let tail = j
                        .state
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .stderr
                        .last()
                        .cloned()
                        .unwrap_or_default();
                    format!(
                        "the build process ended ({}) without a final event: {}",
                        code.map_or("killed".to_string(), |c| format!("exit code {c}")),
                        crate::quote::excerpt_n(&tail, 200)
                    )
                };
                let elapsed = u64::try_from(j.started.elapsed().as_millis()).unwrap_or(u64::MAX);
                j.push(failed_event(&why, elapsed));
            }
            {
                let mut s = j.state.lock().unwrap_or_else(|e| e.into_inner());
                s.exit_code = code;
                s.pid = None;
                if s.status == JobStatus::Running {
                    s.status = if ended_well {
                        JobStatus::Succeeded
                    } else {
                        JobStatus::Failed
                    };
                }
            }
            j.changed.notify_waiters();
        });
        Ok(job)
    }

    /// Stops job `id` (SIGTERM to its process group, then SIGKILL after 10 s).
    pub fn cancel(&self, id: &str) -> Option<JobStatus> {
        let job = self.get(id)?;
        let pid = {
            let mut s = job.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.status != JobStatus::Running {
                return Some(s.status);
            }
            s.status = JobStatus::Cancelled;
            s.pid
        };
        if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
            let group = nix::unistd::Pid::from_raw(-pid);
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGTERM);
            let job2 = job.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                let still = job2
                    .state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pid
                    .is_some();
                if still {
                    let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
                }
            });
        }
        job.changed.notify_waiters();
        Some(JobStatus::Cancelled)
    }
}
