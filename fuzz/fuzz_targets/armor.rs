//! Armored license files: every block that decodes round-trips through the writer.
#![no_main]

use keyseal_core::armor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for block in armor::blocks(text).take(16) {
        let Ok(block) = block else { continue };
        let mut buf = [0u8; 8192];
        let Ok(bytes) = block.decode(&mut buf) else { continue };
        let mut again = String::new();
        armor::write_block(&mut again, block.label(), bytes).expect("write to string");
        let reread = armor::blocks(&again).next().expect("one block").expect("valid block");
        let mut buf2 = [0u8; 8192];
        assert_eq!(reread.decode(&mut buf2).expect("decodes"), bytes);
    }
});
