//! `mcpbusctl sessions` and `tasks`: how many there are and how old, never what they hold.
//!
//! Sessions are counted by age (from `created_ms`, the only field read of a record); no id,
//! client or principal is printed. Tasks are listed by id, state, pool, tool and age, without
//! their arguments, questions, answers or result.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use bus_schema::connect::NatsArgs;
use bus_schema::topology::{SESSIONS_KV, TASKS_KV};
use mcpbus_gateway::tasks::TaskRecord;
use serde::{Deserialize, Serialize};

use crate::cluster::{now_ms, Cluster};
use crate::table;

#[derive(clap::Args)]
pub struct SessionsArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// One JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct TasksArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// One JSON document instead of a table.
    #[arg(long)]
    json: bool,
    /// List at most this many tasks, the newest first (0: all). The counts are always whole.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

/// Age ranges sessions are counted in: up to each bound (exclusive), and past the last.
const AGE_BOUNDS: [(Duration, &str); 5] = [
    (Duration::from_secs(60), "<1m"),
    (Duration::from_secs(600), "1m-10m"),
    (Duration::from_secs(3600), "10m-1h"),
    (Duration::from_secs(6 * 3600), "1h-6h"),
    (Duration::from_secs(24 * 3600), "6h-24h"),
];
const PAST_LAST_BOUND: &str = ">=24h";

/// The one field of a session record read here.
#[derive(Deserialize)]
struct SessionAge {
    created_ms: u64,
}

#[derive(Serialize)]
struct Sessions {
    count: usize,
    oldest_secs: Option<u64>,
    median_secs: Option<u64>,
    /// Sessions by age range, youngest first.
    ages: Vec<AgeRange>,
}

#[derive(Serialize)]
struct AgeRange {
    range: &'static str,
    count: usize,
}

#[derive(Serialize)]
struct Tasks {
    count: usize,
    /// Tasks by state.
    states: BTreeMap<String, usize>,
    /// The newest first, at most `--limit`.
    tasks: Vec<TaskView>,
}

#[derive(Serialize)]
struct TaskView {
    id: String,
    state: String,
    pool: String,
    tool: String,
    age_secs: u64,
    /// Past its ttl: gateways answer it as gone, and the bucket drops it soon.
    expired: bool,
}

pub async fn run_sessions(args: SessionsArgs, out: &mut impl Write) -> Result<()> {
    let cluster = Cluster::connect(args.nats).await?;
    let now = now_ms();
    let mut ages: Vec<u64> = cluster
        .read_bucket(SESSIONS_KV)
        .await?
        .into_iter()
        .filter_map(|e| serde_json::from_slice::<SessionAge>(&e.value).ok())
        .map(|s| now.saturating_sub(s.created_ms) / 1000)
        .collect();
    ages.sort_unstable();
    let sessions = Sessions {
        count: ages.len(),
        oldest_secs: ages.last().copied(),
        median_secs: ages.get(ages.len() / 2).copied(),
        ages: histogram(&ages),
    };
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&sessions)?)?;
        return Ok(());
    }
    let secs = |s: Option<u64>| s.map_or("-".into(), |s| table::duration(Duration::from_secs(s)));
    writeln!(
        out,
        "{} sessions; oldest {}, median {}",
        sessions.count,
        secs(sessions.oldest_secs),
        secs(sessions.median_secs)
    )?;
    let rows: Vec<Vec<String>> = sessions
        .ages
        .iter()
        .map(|a| vec![a.range.to_owned(), a.count.to_string()])
        .collect();
    write!(out, "{}", table::render(&["AGE", "SESSIONS"], &rows))?;
    Ok(())
}

/// Counts of `ages` (seconds, sorted) per range of [`AGE_BOUNDS`].
fn histogram(ages: &[u64]) -> Vec<AgeRange> {
    let mut ranges: Vec<AgeRange> = AGE_BOUNDS
        .iter()
        .map(|(_, range)| AgeRange { range, count: 0 })
        .collect();
    ranges.push(AgeRange {
        range: PAST_LAST_BOUND,
        count: 0,
    });
    for &age in ages {
        let i = AGE_BOUNDS
            .iter()
            .position(|(bound, _)| age < bound.as_secs())
            .unwrap_or(AGE_BOUNDS.len());
        ranges[i].count += 1;
    }
    ranges
}

pub async fn run_tasks(args: TasksArgs, out: &mut impl Write) -> Result<()> {
    let cluster = Cluster::connect(args.nats).await?;
    let now = now_ms();
    let mut records: Vec<TaskRecord> = cluster
        .read_bucket(TASKS_KV)
        .await?
        .into_iter()
        .filter_map(|e| serde_json::from_slice(&e.value).ok())
        .collect();
    records.sort_by(|a, b| {
        b.created_ms
            .cmp(&a.created_ms)
            .then_with(|| a.task_id.cmp(&b.task_id))
    });
    let state = |r: &TaskRecord| {
        serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let mut states = BTreeMap::new();
    for r in &records {
        *states.entry(state(r)).or_insert(0) += 1;
    }
    let limit = if args.limit == 0 {
        records.len()
    } else {
        args.limit
    };
    let tasks = Tasks {
        count: records.len(),
        states,
        tasks: records
            .iter()
            .take(limit)
            .map(|r| TaskView {
                id: r.task_id.clone(),
                state: state(r),
                pool: r.pool.to_string(),
                tool: r.tool.clone(),
                age_secs: now.saturating_sub(r.created_ms) / 1000,
                expired: r.expired(now),
            })
            .collect(),
    };
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&tasks)?)?;
        return Ok(());
    }
    let by_state: Vec<String> = tasks
        .states
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    if by_state.is_empty() {
        writeln!(out, "0 tasks")?;
    } else {
        writeln!(out, "{} tasks: {}", tasks.count, by_state.join(", "))?;
    }
    let rows: Vec<Vec<String>> = tasks
        .tasks
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                if t.expired {
                    format!("{} (expired)", t.state)
                } else {
                    t.state.clone()
                },
                t.pool.clone(),
                t.tool.clone(),
                table::duration(Duration::from_secs(t.age_secs)),
            ]
        })
        .collect();
    if !rows.is_empty() {
        write!(
            out,
            "{}",
            table::render(&["TASK", "STATE", "POOL", "TOOL", "AGE"], &rows)
        )?;
    }
    if tasks.tasks.len() < tasks.count {
        writeln!(
            out,
            "({} older tasks not listed; --limit 0 lists all)",
            tasks.count - tasks.tasks.len()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_fall_in_their_ranges() {
        let counts: Vec<usize> = histogram(&[0, 59, 60, 3599, 3600, 86_400, 100_000])
            .iter()
            .map(|r| r.count)
            .collect();
        assert_eq!(counts, [2, 1, 1, 1, 0, 2]);
    }
}
