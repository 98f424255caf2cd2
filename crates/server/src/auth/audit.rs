//! Audit lines: one event in the server's own log for every state change made through the API,
//! and for every request refused for its scope. A line says who (the token's name and scope),
//! from where, what (the action, in the CLI's words), which app, and the answer's status:
//!
//! ```text
//! audit: token=ci scope=deploy:shop from=127.0.0.1 action=config:set app=shop set=SECRET status=200
//! ```
//!
//! Details come from the request's path and JSON body, and only fields that are never secret:
//! config changes name the keys, never a value; one-off commands are not shown (a command line
//! may carry a password). Every word is checked against a small alphabet, so a request cannot
//! write a line of its own into the log.

use serde_json::Value;

/// The longest word put in an audit line.
const MAX_WORD: usize = 255;

/// `word` as it may appear in a line: letters, digits and `_ - . : * @`, at most
/// [`MAX_WORD`] bytes; anything else becomes `?`.
pub fn word(word: &str) -> String {
    let ok = !word.is_empty()
        && word.len() <= MAX_WORD
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:*@".contains(&b));
    if ok { word.to_string() } else { "?".into() }
}

/// The non-secret details of a request body for `action`, as ` key=value` pairs.
pub fn details(action: &str, body: &Value) -> String {
    let mut out = String::new();
    let mut push = |key: &str, words: Vec<String>| {
        if !words.is_empty() {
            out.push_str(&format!(" {key}={}", words.join(",")));
        }
    };
    let field = |name: &str| {
        body[name]
            .as_str()
            .map(word)
            .into_iter()
            .collect::<Vec<_>>()
    };
    match action {
        "config:set" => {
            // Keys only: the values are secrets.
            let set = body["set"]
                .as_object()
                .map(|m| m.keys().map(|k| word(k)).collect())
                .unwrap_or_default();
            let unset = body["unset"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).map(word).collect())
                .unwrap_or_default();
            push("set", set);
            push("unset", unset);
        }
        "ps:scale" => {
            let changes = body
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(t, n)| {
                            format!(
                                "{}={}",
                                word(t),
                                n.as_i64().map_or("?".into(), |n| n.to_string())
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            push("formation", changes);
        }
        "ps:restart" => push("type", field("type")),
        "rollback" => push("to", field("version")),
        "domains:add" => push("hostname", field("hostname")),
        "addons:create" => {
            push("service", field("service"));
            push("as", field("as"));
        }
        "addons:attach" => {
            push("addon", field("addon"));
            push("as", field("as"));
        }
        "apps:create" | "tokens:create" => {
            push("name", field("name"));
            push("scope", field("scope"));
            push("for", field("app"));
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_changes_name_keys_and_never_values() {
        let body = json!({"set": {"SECRET": "hunter2", "B": "x"}, "unset": ["OLD"]});
        let d = details("config:set", &body);
        assert_eq!(d, " set=B,SECRET unset=OLD");
        assert!(!d.contains("hunter2"));
    }

    #[test]
    fn words_cannot_break_the_line() {
        assert_eq!(word("web"), "web");
        assert_eq!(word("a\nfake: audit line"), "?");
        assert_eq!(word(&"x".repeat(MAX_WORD + 1)), "?");
        let d = details(
            "domains:add",
            &json!({"hostname": "shop.example.com status=200\n"}),
        );
        assert_eq!(d, " hostname=?");
        assert_eq!(
            details("ps:scale", &json!({"web": 2, "bad key": "x"})),
            " formation=?=?,web=2"
        );
        assert_eq!(
            details("run", &json!({"command": "psql postgres://u:pw@h/db"})),
            ""
        );
    }
}
