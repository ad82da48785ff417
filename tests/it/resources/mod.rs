//! Protected resources (CONTRACT.md, "Protected resources and gateways"):
//! the registry through the CLI, tokens issued for a resource (RFC 8707) and
//! introspection by it, the gateway check over HTTP, a real nginx in front of
//! an upstream, and the official MCP SDK against an MCP server registered as
//! a resource.

mod gateway;
mod mcp;
mod nginx;
mod registry;
mod tokens;
