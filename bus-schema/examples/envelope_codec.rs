//! JSON against MessagePack for the bus envelope (ADR 0027): the time and the allocations to
//! encode and decode the two messages of a `tools/call echo` on the stateless lane, a
//! `CallRequest` and its `CallReply`, as the gateway and the worker do per call. Also the
//! cost of the MCP payload as a `serde_json::Value` tree, which either codec builds.
//!
//! `cargo run --release -p mcpbus-bus-schema --example envelope_codec [ITERATIONS]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bus_schema::messages::{CallEvent, CallReply, CallRequest, Lane};
use bus_schema::names::InstanceId;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

/// Counts allocations, to report them per message.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The bench's request, as the gateway queues it.
fn request() -> CallRequest {
    CallRequest {
        protocol: 2,
        call_id: "7851c759ec0b47948aec8ffffc49f61a".into(),
        method: "tools/call".into(),
        params: json!({
            "name": "echo",
            "arguments": {"text": "hello"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "mcpbus-bench", "version": "0"}
            }
        }),
        reply_to: "mcpbus.v2.reply.demo.gw-2eb27680edec.7851c759ec0b47948aec8ffffc49f61a".into(),
        deadline_ms: 1_795_935_063_685,
        lane: Lane::Stateless,
        protocol_version: "2026-07-28".into(),
        client_capabilities: json!({}),
        reply_durable: false,
        task_id: None,
        cancel_on: None,
        principal: None,
    }
}

fn reply() -> CallReply {
    CallReply {
        protocol: 2,
        call_id: "7851c759ec0b47948aec8ffffc49f61a".into(),
        instance: InstanceId::new("w1").unwrap(),
        event: CallEvent::Result {
            result: json!({"content": [{"type": "text", "text": "hello"}], "isError": false}),
        },
    }
}

struct Codec {
    name: &'static str,
    encode: fn(&dyn erased::Ser) -> Vec<u8>,
}

/// Object-safe serialization, so one loop serves both messages.
mod erased {
    pub trait Ser {
        fn json(&self) -> Vec<u8>;
        fn msgpack(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> Vec<u8> {
            serde_json::to_vec(self).unwrap()
        }
        fn msgpack(&self) -> Vec<u8> {
            // Named fields: the envelope is a map, as in JSON, so that fields can be added
            // and skipped (PROTOCOL §1: unknown fields are ignored).
            rmp_serde::to_vec_named(self).unwrap()
        }
    }
}

/// Mean ns and allocations per operation.
fn measure(iterations: u64, mut op: impl FnMut()) -> (f64, f64) {
    for _ in 0..iterations / 10 {
        op();
    }
    let a0 = ALLOCATIONS.load(Ordering::Relaxed);
    let t0 = Instant::now();
    for _ in 0..iterations {
        op();
    }
    let ns = t0.elapsed().as_nanos() as f64 / iterations as f64;
    let allocs = (ALLOCATIONS.load(Ordering::Relaxed) - a0) as f64 / iterations as f64;
    (ns, allocs)
}

fn row<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    what: &str,
    msg: &T,
    codec: &Codec,
    iterations: u64,
) {
    let bytes = (codec.encode)(msg);
    let back: T = if codec.name == "JSON" {
        serde_json::from_slice(&bytes).unwrap()
    } else {
        rmp_serde::from_slice(&bytes).unwrap()
    };
    assert_eq!(&back, msg, "{} round trip", codec.name);
    let (enc_ns, enc_allocs) = measure(iterations, || {
        black_box((codec.encode)(black_box(msg)));
    });
    let (dec_ns, dec_allocs) = measure(iterations, || {
        let m: T = if codec.name == "JSON" {
            serde_json::from_slice(black_box(&bytes)).unwrap()
        } else {
            rmp_serde::from_slice(black_box(&bytes)).unwrap()
        };
        black_box(m);
    });
    println!(
        "| {what} | {} | {} | {:.0} | {:.1} | {:.0} | {:.1} |",
        codec.name,
        bytes.len(),
        enc_ns,
        enc_allocs,
        dec_ns,
        dec_allocs
    );
}

fn main() {
    let iterations: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let codecs = [
        Codec {
            name: "JSON",
            encode: |m| m.json(),
        },
        Codec {
            name: "MessagePack",
            encode: |m| m.msgpack(),
        },
    ];
    println!("{iterations} iterations each");
    println!("| Message | Codec | Bytes | Encode ns | Encode allocs | Decode ns | Decode allocs |");
    println!("|---|---|---|---|---|---|---|");
    let (req, rep) = (request(), reply());
    for codec in &codecs {
        row("CallRequest (echo)", &req, codec, iterations);
        row("CallReply (result)", &rep, codec, iterations);
    }
    // The MCP payload alone, as a Value tree: what carrying it raw would save on each side.
    let params = req.params.clone();
    let text = serde_json::to_vec(&params).unwrap();
    let (ns, allocs) = measure(iterations, || {
        let v: serde_json::Value = serde_json::from_slice(black_box(&text)).unwrap();
        black_box(v);
    });
    println!(
        "| params as a Value tree (decode + drop) | JSON | {} | | | {ns:.0} | {allocs:.1} |",
        text.len()
    );
    let (ns, allocs) = measure(iterations, || {
        black_box(serde_json::to_vec(black_box(&params)).unwrap());
    });
    println!(
        "| params Value tree (encode) | JSON | {} | {ns:.0} | {allocs:.1} | | |",
        text.len()
    );
}
