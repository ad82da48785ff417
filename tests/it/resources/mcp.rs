//! The official MCP TypeScript SDK end to end against an MCP server
//! registered with keygate as a protected resource (tests/node/mcp-server.mjs,
//! the SDK's server side): the SDK's client meets the server's 401, finds
//! keygate through the server's RFC 9728 metadata, registers, gets a token
//! with `resource` = the server's URL, and calls a tool; the server accepts
//! it by introspection with the resource's credentials, and refuses a token
//! issued for keygate's own `/v1`.

use crate::mcp_sdk::Script;
use crate::support::*;
use serde_json::json;

fn the_sdk_calls_a_tool_of_an_mcp_server_behind_keygate(b: Backend) {
    let f = Fixture::new(b);
    let port = free_port();
    let mcp_url = format!("http://127.0.0.1:{port}/mcp");
    let resource = f.db().create_resource(&mcp_url, &[]);
    let server = Script::run(
        "mcp-server.mjs",
        &[
            &port.to_string(),
            &f.server.base,
            &s(&resource, "client_id"),
            &s(&resource, "client_secret"),
        ],
    );
    assert_eq!(server.next()["listening"], mcp_url.as_str());

    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let mut client = Script::run("mcp-tool-client.mjs", &[&mcp_url, &redirect]);
    let authorize = s(&client.next(), "authorize");
    let url = url::Url::parse(&authorize).expect("the authorize URL");
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(param(&params, "resource"), Some(mcp_url.as_str()));
    assert!(
        authorize.starts_with(&f.server.url("/oauth/authorize?")),
        "{authorize}"
    );

    let mut owner = f.owner();
    let page = owner.get(&authorize);
    assert!(
        page.body.contains("Acme API"),
        "the consent page names the server"
    );
    let done = approve_page(&f, &mut owner, &page);
    assert!(
        done.location().starts_with(&redirect),
        "{}",
        done.location()
    );
    client.send(&json!({"code": code_of(&done)}));
    let report = client.next()["done"].clone();
    assert_eq!(report["first"], "unauthorized");
    assert_eq!(report["resource"], mcp_url.as_str());
    assert_eq!(report["tools"], json!(["whoami"]));
    assert_eq!(report["caller"]["workspace_id"], f.workspace_id.as_str());
    assert_eq!(report["caller"]["token_type"], "access_token");
    assert_eq!(report["caller"]["client_id"], report["client_id"]);

    // The server's token is for the server only; a /v1 token is refused there.
    let token = s(&report, "access_token");
    assert_eq!(f.server.v1_status(&token), 401);
    let (v1_token, _) = f.tokens("workspace:read");
    let mut http = Http::new(&format!("http://127.0.0.1:{port}"));
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "1"}}
    })
    .to_string();
    let call = |http: &mut Http, bearer: &str| {
        let auth = format!("Bearer {bearer}");
        http.send(
            "POST",
            "/mcp",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("Accept", "application/json, text/event-stream"),
            ],
            &initialize,
        )
    };
    let refused = call(&mut http, &v1_token);
    assert_eq!(refused.status, 401, "{}", refused.body);
    let w = refused.header("www-authenticate").unwrap_or_default();
    assert!(w.contains("resource_metadata="), "{w}");
    // An API key works at every resource.
    let key = f.api_key("read_only");
    assert_eq!(call(&mut http, &key).status, 200);
    drop(server);
}

both_backends!(the_sdk_calls_a_tool_of_an_mcp_server_behind_keygate);
