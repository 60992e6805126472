//! The external upload flow: `files.getUploadURLExternal` hands out an upload URL on this server, the bytes
//! are POSTed there (raw or multipart), and `files.completeUploadExternal` shares them into a channel/thread.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::chat::check_thread_parent;
use super::{Params, Reply, error, error_with, ok};
use crate::slack::records::UploadedFile;
use crate::slack::state::{Shared, Tracked};

/// `alt_txt` limit (`alt_txt_too_large`).
const MAX_ALT_TXT: usize = 1000;

/// The largest file Slack accepts: 1 GB.
pub(super) const MAX_FILE_BYTES: usize = 1 << 30;

pub(super) fn get_upload_url_external(shared: &Shared, params: &Params) -> Reply {
    let Some(filename) = params.str("filename") else {
        return error_with(
            "invalid_arguments",
            json!({"response_metadata": {"messages": ["[ERROR] missing required field: filename"]}}),
        );
    };
    let length = match params.u64("length") {
        // "Typically only occurs when the `length` provided is 0."
        Some(0) => return error("missing_argument"),
        Some(length) => length,
        None => {
            return error_with(
                "invalid_arguments",
                json!({"response_metadata": {"messages": ["[ERROR] missing required field: length"]}}),
            );
        }
    };
    if params.str("alt_txt").is_some_and(|alt| alt.chars().count() > MAX_ALT_TXT) {
        return error("alt_txt_too_large");
    }
    let file_id = shared.fresh_id("F");
    let upload_url = format!("{}/upload/v1/{file_id}", shared.base_url);
    shared.mutate(|state| {
        state.uploads.push(Tracked::new(UploadedFile {
            file_id: file_id.clone(),
            filename: filename.to_owned(),
            declared_length: length,
            content: None,
            content_type: None,
            title: None,
            channel_id: None,
            thread_ts: None,
            initial_comment: None,
            completed: false,
        }))
    });
    ok(json!({ "upload_url": upload_url, "file_id": file_id }))
}

pub(super) fn complete_upload_external(shared: &Shared, params: &Params) -> Reply {
    let Some(Value::Array(files)) = params.get("files") else {
        return error_with(
            "invalid_arguments",
            json!({"response_metadata": {"messages": ["[ERROR] missing required field: files"]}}),
        );
    };
    let wanted: Vec<(String, Option<String>)> = files
        .iter()
        .filter_map(|f| {
            let id = f.get("id")?.as_str()?.to_owned();
            Some((id, f.get("title").and_then(Value::as_str).map(str::to_owned)))
        })
        .collect();
    if wanted.is_empty() || wanted.len() != files.len() {
        return error_with(
            "invalid_arguments",
            json!({"response_metadata": {"messages": ["[ERROR] files[].id required"]}}),
        );
    }
    // `channel_id`, or `channels` (comma-separated; the fake shares to the first one).
    let channel_param = match params.str("channel_id") {
        Some(channel) => Some((channel.to_owned(), false)),
        None => params.list("channels").and_then(|list| Some((list.first()?.clone(), list.len() > 1))),
    };
    shared.mutate(|state| {
        let channel_id = match &channel_param {
            None => None,
            Some((wanted_channel, several)) => {
                if *several {
                    state.finding("files.completeUploadExternal: several channels given; the fake shares to the first");
                }
                let Some(channel) = state.channel(wanted_channel) else { return error("channel_not_found") };
                if !channel.bot_is_member {
                    return error("not_in_channel");
                }
                Some(channel.id.clone())
            }
        };
        // Every file must have been uploaded and not completed yet ("This method can only be called once").
        for (id, _) in &wanted {
            let known = state.uploads.iter().find(|f| f.item.file_id == *id);
            if !known.is_some_and(|f| f.item.content.is_some() && !f.item.completed) {
                return error("file_not_found");
            }
        }
        let thread_ts = params.str("thread_ts").map(str::to_owned);
        if let (Some(channel), Some(parent)) = (&channel_id, &thread_ts) {
            check_thread_parent(state, channel, parent, "files.completeUploadExternal");
        }
        let mut answered = Vec::new();
        let mut length_findings = Vec::new();
        for (id, title) in &wanted {
            if let Some(file) = state.uploads.iter_mut().find(|f| f.item.file_id == *id) {
                let file = &mut file.item;
                file.completed = true;
                file.title = title.clone().or(Some(file.filename.clone()));
                file.channel_id = channel_id.clone();
                file.thread_ts = thread_ts.clone();
                file.initial_comment = params.str("initial_comment").map(str::to_owned);
                let uploaded = file.content.as_ref().map_or(0, Vec::len) as u64;
                if uploaded != file.declared_length {
                    length_findings.push(format!(
                        "file {id}: declared length {} but {uploaded} bytes were uploaded",
                        file.declared_length
                    ));
                }
                answered.push(json!({ "id": id, "title": file.title }));
            }
        }
        length_findings.into_iter().for_each(|f| state.finding(f));
        ok(json!({ "files": answered }))
    })
}

/// `POST <upload_url>`: raw bytes or `multipart/form-data` (first part carrying a file, else the first part).
/// Slack answers 200 on success; slack-morphism treats a non-JSON 200 as success.
pub(super) async fn upload(
    State(shared): State<Arc<Shared>>,
    Path(file_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    super::delay(&shared).await;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (content, part_type) = match content_type.as_deref().and_then(multipart_boundary) {
        Some(boundary) => match first_file_part(&body, &boundary) {
            Some(part) => part,
            None => return (StatusCode::BAD_REQUEST, "invalid multipart body").into_response(),
        },
        None => (body.to_vec(), content_type),
    };
    let length = content.len();
    let stored = shared.mutate(|state| {
        let Some(file) = state.uploads.iter_mut().find(|f| f.item.file_id == file_id) else { return false };
        let again = file.item.content.is_some();
        file.item.content = Some(content);
        file.item.content_type = part_type;
        if again {
            state.finding(format!("file {file_id} uploaded more than once"));
        }
        true
    });
    if stored {
        (StatusCode::OK, format!("OK - {length}")).into_response()
    } else {
        (StatusCode::NOT_FOUND, "upload URL not found").into_response()
    }
}

fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    if !parts.next()?.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parts.find_map(|p| p.trim().strip_prefix("boundary=")).map(|b| b.trim_matches('"').to_owned())
}

/// Content and content type of the first part with a `filename`, else of the first part.
fn first_file_part(body: &[u8], boundary: &str) -> Option<(Vec<u8>, Option<String>)> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(start) = find(rest, delimiter.as_bytes()) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let rest_after_crlf = rest.strip_prefix(b"\r\n").unwrap_or(rest);
        let header_end = find(rest_after_crlf, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&rest_after_crlf[..header_end]).into_owned();
        let content_start = &rest_after_crlf[header_end + 4..];
        let end = find(content_start, format!("\r\n{delimiter}").as_bytes())?;
        parts.push((headers, content_start[..end].to_vec()));
        rest = &content_start[end + 2..];
    }
    let header_value = |headers: &str, name: &str| {
        headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    };
    let chosen = parts
        .iter()
        .find(|(headers, _)| header_value(headers, "content-disposition").is_some_and(|d| d.contains("filename=")))
        .or_else(|| parts.first())?;
    Some((chosen.1.clone(), header_value(&chosen.0, "content-type")))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_file_part_is_extracted() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"rows.csv\"\r\nContent-Type: text/csv\r\n\r\na,b\r\n1,2\r\n--XyZ--\r\n";
        let (content, content_type) = first_file_part(body, "XyZ").expect("parsed");
        assert_eq!(content, b"a,b\r\n1,2");
        assert_eq!(content_type.as_deref(), Some("text/csv"));
        assert_eq!(multipart_boundary("multipart/form-data; boundary=\"XyZ\"").as_deref(), Some("XyZ"));
        assert_eq!(multipart_boundary("text/csv"), None);
    }
}
