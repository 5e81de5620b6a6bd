//! Who is calling: a signed-in user, proven by a JWT the function checks itself.

use uuid::Uuid;

use crate::error::{ApiError, Result};
use crate::http::Request;
use crate::jwt::JwtVerifier;

/// A verified, signed-in user and the token to forward to PostgREST.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub user_id: Uuid,
    pub token: String,
}

/// 401 unless the request carries a valid token of a signed-in user
/// (`role = authenticated` and a UUID `sub`). The anon key is not a user.
pub async fn authenticate(req: &Request, jwt: &JwtVerifier, now: i64) -> Result<Caller> {
    let token = req.bearer().ok_or_else(|| {
        ApiError::Unauthorized("missing Authorization: Bearer <access token>".into())
    })?;
    let claims = jwt.verify(token, now).await?;
    if claims.role.as_deref() != Some("authenticated") {
        return Err(ApiError::Unauthorized(
            "a signed-in user's access token is required".into(),
        ));
    }
    let user_id = claims
        .sub
        .as_deref()
        .and_then(|s| Uuid::try_parse(s).ok())
        .ok_or_else(|| ApiError::Unauthorized("the token has no user id".into()))?;
    Ok(Caller {
        user_id,
        token: token.to_owned(),
    })
}
