//! `GET /v2/<name>/tags/list`, paged by the `Link` header: the one distribution call
//! `mockimg rebase --latest-patch` adds. Kept alone so it can join the API module as it is.
use super::http::Body;
use super::Registry;
use crate::error::Result;
use crate::oci::reference::RegistryRef;
use reqwest::header::{HeaderMap, LINK};
use reqwest::Method;

/// Page size asked for; registries may answer with fewer and a `Link` to the next page.
const PAGE: usize = 1000;

/// Every tag of `r`'s repository, in the order the registry lists them.
pub(crate) async fn list_tags(reg: &Registry, r: &RegistryRef) -> Result<Vec<String>> {
    let op = format!("listing the tags of {}", r.repo_name());
    let scopes = vec![format!("repository:{}:pull", r.repository)];
    let mut next = Some(format!("/v2/{}/tags/list?n={PAGE}", r.repository));
    let mut tags = Vec::new();
    // A registry whose Link points back at a page already read must not loop us forever.
    let mut seen = std::collections::HashSet::new();
    while let Some(path) = next.take() {
        if !seen.insert(path.clone()) {
            break;
        }
        let (page, link) = reg
            .retry(&op, || async {
                let res = reg
                    .send(
                        &op,
                        &scopes,
                        Method::GET,
                        &path,
                        HeaderMap::new(),
                        Body::Empty,
                    )
                    .await?;
                if !res.status().is_success() {
                    return Err(reg.status_error(&op, res).await);
                }
                let link = res
                    .headers()
                    .get(LINK)
                    .and_then(|v| v.to_str().ok())
                    .and_then(next_page);
                let bytes = res
                    .bytes()
                    .await
                    .map_err(|e| reg.invalid_answer(&op, &format!("reading the tag list: {e}")))?;
                let body: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|e| reg.invalid_answer(&op, &format!("not a tag list: {e}")))?;
                let page: Vec<String> = body
                    .get("tags")
                    .and_then(|t| t.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok((page, link))
            })
            .await?;
        tags.extend(page);
        next = link;
    }
    Ok(tags)
}

/// The target of `Link: </v2/…?last=x&n=…>; rel="next"`, as a path (or the full URL given).
fn next_page(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
        let t = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| t.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::list_tags;
    use crate::oci::reference::RegistryRef;
    use crate::registry::{Registry, RegistryOptions};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A registry edge the test registry does not show (distribution 2.8 ignores `n` on tag
    /// lists): pages linked by `Link`, the last page without one.
    #[tokio::test]
    async fn every_page_of_a_paged_tag_list_is_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).to_string();
                    // A TLS ClientHello (the scheme probe): answered as a plain HTTP server
                    // answers one.
                    let Some(path) = req.strip_prefix("GET ").and_then(|r| r.split(' ').next())
                    else {
                        let _ = s
                            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await;
                        return;
                    };
                    let (body, link) = match path {
                        "/v2/engine/tags/list?n=1000" => (
                            r#"{"tags":["4.9.2","4.9.3"]}"#,
                            "</v2/engine/tags/list?last=4.9.3&n=2>; rel=\"next\"\r\n",
                        ),
                        "/v2/engine/tags/list?last=4.9.3&n=2" => {
                            (r#"{"tags":["4.9.10","latest"]}"#, "")
                        }
                        _ => ("{}", ""),
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
                        body.len(),
                        link.replace("</", "Link: </")
                    );
                    let _ = s.write_all(format!("{head}{body}").as_bytes()).await;
                });
            }
        });
        let r = RegistryRef::parse(&format!("{addr}/engine:4.9.3")).unwrap();
        let reg = Registry::connect(&r.registry, &RegistryOptions::default()).unwrap();
        let tags = list_tags(&reg, &r).await.unwrap();
        assert_eq!(tags, ["4.9.2", "4.9.3", "4.9.10", "latest"]);
    }

    #[test]
    fn link_header_gives_the_next_page() {
        let l = r#"</v2/engine/tags/list?last=4.9.3&n=2>; rel="next""#;
        assert_eq!(
            super::next_page(l).as_deref(),
            Some("/v2/engine/tags/list?last=4.9.3&n=2")
        );
        assert_eq!(super::next_page(r#"</x>; rel="prev""#), None);
        assert_eq!(super::next_page("garbage"), None);
    }
}
