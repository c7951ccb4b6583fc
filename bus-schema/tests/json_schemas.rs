//! The JSON Schema files in `bus-schema/schema/` are exactly what the message types generate,
//! so a worker author validating against them validates against the real contract. After a
//! deliberate change to a message type, regenerate them with
//! `MCPBUS_BLESS_SCHEMAS=1 cargo test -p mcpbus-bus-schema --test json_schemas`.

use std::path::PathBuf;

#[test]
fn schema_files_match_the_message_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema");
    let bless = std::env::var("MCPBUS_BLESS_SCHEMAS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, schema) in bus_schema::schema::all() {
        let path = dir.join(format!("{name}.json"));
        let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if bless {
            std::fs::write(&path, &generated).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(generated.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "these schema files differ from their message types (regenerate them: see this \
         test's documentation): {stale:?}"
    );
    // No file without a message: a removed type takes its schema with it.
    let names: Vec<String> = bus_schema::schema::all()
        .into_iter()
        .map(|(n, _)| format!("{n}.json"))
        .collect();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        assert!(names.contains(&file), "{file} has no message type");
    }
}
