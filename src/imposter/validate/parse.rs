//! Config files as YAML documents: a JSON file is one document, a YAML file may hold several.
//! Anchors, aliases and `<<` merge keys are resolved, as the engine resolves them.
use serde_norway::Value;

/// Parses a config file into its documents; `Err` is the message for the user.
pub(super) fn parse_config(file: &str, text: &str) -> Result<Vec<Value>, String> {
    if file.ends_with(".json") {
        let json: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("invalid JSON: {e} — fix the syntax there"))?;
        let value = serde_norway::to_value(&json)
            .map_err(|e| format!("cannot read the JSON: {e} — simplify the file"))?;
        return Ok(vec![value]);
    }
    let mut docs = match serde_norway::from_str::<Value>(text) {
        Ok(value) => vec![value],
        Err(e) if e.to_string().contains("more than one document") => {
            let mut docs = Vec::new();
            for (first_line, chunk) in split_documents(text) {
                let value = serde_norway::from_str::<Value>(&chunk).map_err(|e| {
                    format!(
                        "invalid YAML in the document starting at line {first_line} (line numbers \
                         count from there): {e} — fix the syntax there"
                    )
                })?;
                if !value.is_null() {
                    docs.push(value);
                }
            }
            if docs.is_empty() {
                docs.push(Value::Null);
            }
            docs
        }
        Err(e) => return Err(format!("invalid YAML: {e} — fix the syntax there")),
    };
    for doc in &mut docs {
        // Without this a reference inside a merged mapping would sit under a `<<` key and
        // escape the checks, and a merged `plugin:` would look missing.
        doc.apply_merge()
            .map_err(|e| format!("invalid YAML merge key (`<<`): {e} — fix the syntax there"))?;
    }
    Ok(docs)
}

/// Splits a multi-document YAML stream at `---` / `...` marker lines. Returns each
/// document with the (1-based) file line it starts on, so errors can point into the file.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let marker = ["---", "..."].into_iter().find_map(|m| {
            let rest = line.strip_prefix(m)?;
            (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(rest)
        });
        match marker {
            Some(rest) => {
                docs.push((start, std::mem::take(&mut current)));
                start = i + 1;
                if !line.starts_with("...") {
                    current.push_str(rest);
                }
                current.push('\n');
            }
            None => {
                current.push_str(line);
                current.push('\n');
            }
        }
    }
    docs.push((start, current));
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_gives_one_value_per_document() {
        let docs = parse_config(
            "m-config.yaml",
            "---\nplugin: rest\n---\n# empty\n---\nplugin: soap\nwsdlFile: x.wsdl\n...\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["plugin"], "rest");
        assert_eq!(docs[1]["wsdlFile"], "x.wsdl");
    }

    #[test]
    fn multi_document_error_names_the_documents_first_line() {
        let err = parse_config("m-config.yaml", "plugin: rest\n---\nplugin: [rest\n").unwrap_err();
        assert!(err.contains("starting at line 2"), "{err}");
    }

    #[test]
    fn anchors_aliases_and_merge_keys_are_resolved() {
        let docs = parse_config(
            "a-config.yaml",
            "x-base: &base\n  plugin: rest\n  response: &ok\n    statusCode: 200\n    file: ok.json\n\
             <<: *base\nresources:\n  - path: /a\n    response: *ok\n  - path: /b\n    response:\n      <<: *ok\n      statusCode: 201\n",
        )
        .unwrap();
        let d = &docs[0];
        assert_eq!(d["plugin"], "rest", "merged from the anchor");
        assert_eq!(d["resources"][0]["response"]["file"], "ok.json");
        assert_eq!(d["resources"][1]["response"]["file"], "ok.json");
        assert_eq!(d["resources"][1]["response"]["statusCode"], 201);
        assert!(d["resources"][1]["response"].get("<<").is_none());
    }

    #[test]
    fn a_scalar_merge_is_an_error() {
        let err = parse_config("a-config.yaml", "plugin: rest\n<<: 5\n").unwrap_err();
        assert!(err.contains("merge"), "{err}");
    }

    #[test]
    fn json_is_one_document() {
        let docs = parse_config("a-config.json", r#"{"plugin": "rest"}"#).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["plugin"], "rest");
        let err = parse_config("a-config.json", "{\n  \"plugin\": \"rest\",\n}\n").unwrap_err();
        assert!(
            err.starts_with("invalid JSON") && err.contains("line 3"),
            "{err}"
        );
    }
}
