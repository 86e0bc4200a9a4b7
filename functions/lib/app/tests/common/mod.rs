//! What the use-case tests share: stamp settings, the local signer, quota
//! bought into an account.
#![allow(dead_code)] // each test file uses its own part

use std::time::Duration;

use meterai_app::stamping::StampSettings;
use meterai_core::quota::{Movement, MovementKind};
use meterai_core::AccountId;
use meterai_memory::Store;
use meterai_pdf::signing::LocalSigner;

pub fn settings() -> StampSettings {
    StampSettings {
        limits: meterai_pdf::stamp::Limits::default(),
        verify_base_url: "https://meterai.test".into(),
        url_ttl: Duration::from_secs(300),
        stamp_timeout: Duration::from_secs(20),
        fault_injection: false,
        slot: Default::default(),
    }
}

/// The test key and chain of `meterai-pdf` (a local key, as the benchmark uses).
pub fn signer() -> LocalSigner {
    LocalSigner::from_pem(
        include_str!("../../../pdf/testdata/signing/signer.key.pem"),
        include_bytes!("../../../pdf/testdata/signing/chain.pem"),
    )
    .expect("the test key and chain")
}

/// `quantity` stamps credited to `account` by a fresh order.
pub async fn credit(store: &Store, account: &AccountId, quantity: i64) {
    let reference = format!("ord_{}", meterai_core::ids::nonce());
    store
        .apply(&Movement::new(
            account,
            MovementKind::Credit,
            quantity,
            &reference,
        ))
        .await
        .expect("a credit takes from no counter");
}
