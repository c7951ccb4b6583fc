//! The Helm chart and the kustomize manifests spell JetStream names (for KEDA) that must be
//! the ones bus-schema creates; this keeps them from drifting apart.

use bus_schema::names::PoolName;
use bus_schema::topology::{pool_consumer_name, CALLS_STREAM};

fn read(path: &str) -> String {
    std::fs::read_to_string(harness::workspace_root().join(path)).unwrap()
}

#[test]
fn the_chart_names_the_calls_stream_and_pool_consumers_like_bus_schema() {
    let helpers = read("deploy/helm/mcpbus/templates/_helpers.tpl");
    assert!(
        helpers.contains(&format!(
            "{{{{- define \"mcpbus.callsStream\" -}}}}{CALLS_STREAM}{{{{- end -}}}}"
        )),
        "callsStream helper must be {CALLS_STREAM}"
    );
    let pool = PoolName::new("demo").unwrap();
    let prefix = pool_consumer_name(&pool)
        .trim_end_matches("demo")
        .to_owned();
    assert!(
        helpers.contains(&format!(
            "{{{{- define \"mcpbus.poolConsumer\" -}}}}{prefix}{{{{ . }}}}"
        )),
        "poolConsumer helper must be {prefix}<pool>"
    );
}

#[test]
fn the_kustomize_keda_example_names_them_like_bus_schema() {
    let scaled = read("k8s/overlays/prod/worker-demo-scaledobject.yaml");
    let consumer = pool_consumer_name(&PoolName::new("demo").unwrap());
    assert!(scaled.contains(&format!("stream: \"{CALLS_STREAM}\"")));
    assert!(scaled.contains(&format!("consumer: \"{consumer}\"")));
}
