//! A Storage API client: upload an object and sign a URL for it, as the
//! caller (so storage.objects RLS applies) or as the service role.

use serde_json::{json, Value};

use crate::error::{ApiError, Result};

#[derive(Debug, Clone)]
pub struct StorageClient {
    /// `$SUPABASE_URL/storage/v1`
    base_url: String,
    apikey: String,
    http: reqwest::Client,
}

/// `bucket/a/b c.pdf` → `bucket/a/b%20c.pdf`: each path segment percent-encoded.
fn object_path(bucket: &str, path: &str) -> String {
    let encoded: Vec<String> = path
        .split('/')
        .map(|segment| {
            serde_urlencoded::to_string([("", segment)]).unwrap_or_default()[1..]
                .replace('+', "%20")
        })
        .collect();
    format!("{bucket}/{}", encoded.join("/"))
}

impl StorageClient {
    pub fn new(base_url: &str, apikey: &str) -> Self {
        StorageClient {
            base_url: base_url.trim_end_matches('/').to_owned(),
            apikey: apikey.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// A POST to `route` under the Storage root, as the holder of `token`.
    fn post(&self, route: &str, token: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/{route}", self.base_url))
            .header("apikey", &self.apikey)
            .bearer_auth(token)
    }

    pub fn upload_request(
        &self,
        bucket: &str,
        path: &str,
        bytes: Vec<u8>,
        content_type: &str,
        upsert: bool,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.post(&format!("object/{}", object_path(bucket, path)), token)
            .header("content-type", content_type)
            .header("x-upsert", if upsert { "true" } else { "false" })
            .body(bytes)
    }

    pub fn sign_request(
        &self,
        bucket: &str,
        path: &str,
        expires_in: u32,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.post(&format!("object/sign/{}", object_path(bucket, path)), token)
            .header("content-type", "application/json")
            .body(json!({ "expiresIn": expires_in }).to_string())
    }

    /// Uploads `bytes` to `bucket/path`; `upsert` replaces an existing object.
    pub async fn upload(
        &self,
        bucket: &str,
        path: &str,
        bytes: Vec<u8>,
        content_type: &str,
        upsert: bool,
        token: &str,
    ) -> Result<()> {
        let (status, body) =
            send(self.upload_request(bucket, path, bytes, content_type, upsert, token)).await?;
        if status == 200 {
            Ok(())
        } else {
            Err(error_from_storage(status, &body))
        }
    }

    /// `GET /bucket`: the buckets the holder of `token` may see, as Storage
    /// lists them (every bucket, for the service role).
    pub async fn list_buckets(&self, token: &str) -> Result<Value> {
        let request = self
            .http
            .get(format!("{}/bucket", self.base_url))
            .header("apikey", &self.apikey)
            .bearer_auth(token);
        let (status, body) = send(request).await?;
        if status != 200 {
            return Err(error_from_storage(status, &body));
        }
        serde_json::from_str(&body)
            .map_err(|e| ApiError::Internal(format!("storage bucket list returned {e}")))
    }

    /// A URL anyone can download `bucket/path` from for `expires_in` seconds.
    pub async fn create_signed_url(
        &self,
        bucket: &str,
        path: &str,
        expires_in: u32,
        token: &str,
    ) -> Result<String> {
        let (status, body) = send(self.sign_request(bucket, path, expires_in, token)).await?;
        if status != 200 {
            return Err(error_from_storage(status, &body));
        }
        let signed = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("signedURL")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .ok_or_else(|| ApiError::Internal(format!("storage sign returned {body}")))?;
        Ok(format!("{}{signed}", self.base_url))
    }
}

async fn send(request: reqwest::RequestBuilder) -> Result<(u16, String)> {
    let response = request
        .send()
        .await
        .map_err(|e| ApiError::Unavailable(format!("storage: {e}")))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| ApiError::Unavailable(format!("storage body: {e}")))?;
    Ok((status, body))
}

/// Storage's `{"statusCode","code","error","message"}` as an ApiError. The
/// limits a caller can fix are client errors; anything else is logged, not shown.
pub fn error_from_storage(status: u16, body: &str) -> ApiError {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = v.get("code").and_then(Value::as_str).unwrap_or("");
    let message = v
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    match (status, code) {
        (413, _) | (_, "EntityTooLarge") => ApiError::FileTooLarge {
            message,
            details: Value::Null,
        },
        (415, _) | (_, "InvalidMimeType") => ApiError::Conflict {
            code: "FILE_TYPE_NOT_ALLOWED".into(),
            message,
            details: Value::Null,
        },
        (409, _) => ApiError::Conflict {
            code: "FILE_EXISTS".into(),
            message,
            details: Value::Null,
        },
        (403, _) => ApiError::Forbidden {
            message,
            details: Value::Null,
        },
        (404, _) => ApiError::NotFound {
            message: "file not found".into(),
            details: Value::Null,
        },
        (s, _) if s >= 500 => ApiError::Unavailable(format!("storage {s}: {body}")),
        _ => ApiError::Internal(format!("storage {status}: {body}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_storage_api_requests() {
        let c = StorageClient::new("http://gw/storage/v1/", "anon");
        let r = c
            .upload_request(
                "purchase-orders",
                "t1/PO 7.pdf",
                b"%PDF".to_vec(),
                "application/pdf",
                true,
                "tok",
            )
            .build()
            .unwrap();
        assert_eq!(
            r.url().as_str(),
            "http://gw/storage/v1/object/purchase-orders/t1/PO%207.pdf"
        );
        assert_eq!(r.headers()["authorization"], "Bearer tok");
        assert_eq!(r.headers()["apikey"], "anon");
        assert_eq!(r.headers()["x-upsert"], "true");
        assert_eq!(r.headers()["content-type"], "application/pdf");
        let s = c
            .sign_request("purchase-orders", "t1/po.pdf", 3600, "tok")
            .build()
            .unwrap();
        assert_eq!(
            s.url().as_str(),
            "http://gw/storage/v1/object/sign/purchase-orders/t1/po.pdf"
        );
        assert_eq!(
            s.body().unwrap().as_bytes().unwrap(),
            br#"{"expiresIn":3600}"#
        );
    }

    #[test]
    fn maps_storage_errors() {
        let e = error_from_storage(
            413,
            r#"{"statusCode":"413","code":"EntityTooLarge","error":"Payload too large","message":"The object exceeded the maximum allowed size"}"#,
        );
        assert_eq!((e.status(), e.code()), (413, "FILE_TOO_LARGE"));
        assert_eq!(
            error_from_storage(415, r#"{"code":"InvalidMimeType","message":"m"}"#).code(),
            "FILE_TYPE_NOT_ALLOWED"
        );
        assert_eq!(
            error_from_storage(409, r#"{"code":"KeyAlreadyExists"}"#).code(),
            "FILE_EXISTS"
        );
        assert_eq!(error_from_storage(403, "{}").status(), 403);
        assert_eq!(error_from_storage(404, "{}").status(), 404);
        assert_eq!(error_from_storage(503, "down").status(), 503);
        assert_eq!(error_from_storage(400, "odd").status(), 500);
    }
}
