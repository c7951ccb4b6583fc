//! A short soak in every test run (issue 15): two minutes of mixed traffic on a 3-node NATS
//! cluster (`harness::soak`): calls on both lanes, long calls resumed on the other gateway,
//! listening streams, worker restarts. It asserts only that it ran and that nothing failed;
//! memory figures come from `mcpbus-bench soak` on release builds (docs/PERFORMANCE.md).

use std::time::Duration;

use harness::soak::{self, SoakPlan};

#[tokio::test(flavor = "multi_thread")]
async fn two_minutes_of_mixed_traffic_fail_nothing() {
    let plan = SoakPlan {
        length: Duration::from_secs(120),
        calls_per_second: 20,
        sample_every: Duration::from_secs(60),
        restart_every: Duration::from_secs(50),
        event_retention: None,
    };
    let report = soak::run(&plan).await.expect("the soak runs");
    eprintln!("{report:#?}");
    assert!(report.calls.ok > 1000, "calls made: {:?}", report.calls);
    assert!(report.long_calls_ok > 10, "long calls made: {report:?}");
    assert_eq!(report.worker_restarts, 2, "{report:?}");
    assert!(report.samples.len() >= 3, "sampled: {report:?}");
    assert_eq!(report.errors(), 0, "{report:#?}");
}
