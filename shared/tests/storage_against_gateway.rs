//! The Rust Storage client against the local gateway's Storage API.
//!
//! Ignored in a plain `cargo test`; scripts/test runs it with `--ignored`
//! once its stack is up, with SUPABASE_URL, SUPABASE_ANON_KEY and
//! SUPABASE_SERVICE_ROLE_KEY set. It works as the service role, as a function
//! storing a generated document does.

use shared::StorageClient;

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k}: run through scripts/test"))
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs the local stack (scripts/test)"]
async fn uploads_signs_and_reports_storage_limits() {
    let url = env("SUPABASE_URL");
    let client = StorageClient::new(&format!("{url}/storage/v1"), &env("SUPABASE_ANON_KEY"));
    let key = env("SUPABASE_SERVICE_ROLE_KEY");
    let folder = format!(
        "{:032x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let path = format!(
        "{}-{}-{}-{}-{}/PO 1.pdf",
        &folder[..8],
        &folder[8..12],
        &folder[12..16],
        &folder[16..20],
        &folder[20..32]
    );
    let pdf = b"%PDF-1.4\n%%EOF\n".to_vec();

    client
        .upload(
            "purchase-orders",
            &path,
            pdf.clone(),
            "application/pdf",
            false,
            &key,
        )
        .await
        .unwrap();
    let signed = client
        .create_signed_url("purchase-orders", &path, 60, &key)
        .await
        .unwrap();
    assert!(
        signed.starts_with(&format!("{url}/storage/v1/object/sign/purchase-orders/")),
        "{signed}"
    );
    let fetched = reqwest::get(&signed).await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), pdf);

    let again = client
        .upload(
            "purchase-orders",
            &path,
            pdf.clone(),
            "application/pdf",
            false,
            &key,
        )
        .await
        .unwrap_err();
    assert_eq!(again.code(), "FILE_EXISTS");
    client
        .upload(
            "purchase-orders",
            &path,
            pdf.clone(),
            "application/pdf",
            true,
            &key,
        )
        .await
        .unwrap();
    let big = client
        .upload(
            "purchase-orders",
            &path,
            vec![0; 10 * 1024 * 1024 + 1],
            "application/pdf",
            true,
            &key,
        )
        .await
        .unwrap_err();
    assert_eq!(big.code(), "FILE_TOO_LARGE");
    let text = client
        .upload(
            "purchase-orders",
            &path,
            b"hi".to_vec(),
            "text/plain",
            true,
            &key,
        )
        .await
        .unwrap_err();
    assert_eq!(text.code(), "FILE_TYPE_NOT_ALLOWED");
    let missing = client
        .create_signed_url(
            "purchase-orders",
            "00000000-0000-4000-8000-000000000000/none.pdf",
            60,
            &key,
        )
        .await
        .unwrap_err();
    assert_eq!(missing.status(), 404);
}
