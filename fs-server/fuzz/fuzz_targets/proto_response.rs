//! Responses as the client decodes them: never panic; a decoded response
//! encodes back to the same bytes.
#![no_main]
use fs_server::proto::Response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Response::decode(data) {
        assert_eq!(r.encode(), data);
    }
});
