//! Requests as the server decodes them: never panic; a decoded request
//! encodes back to the same bytes.
#![no_main]
use fs_server::proto::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Request::decode(data) {
        assert_eq!(r.encode(), data);
    }
});
