// Drives an mcpbus cluster with a real TypeScript MCP client and prints one JSON line per
// gateway with what it saw; tests/tests/typescript_clients.rs checks the lines.
//
//   node smoke.mjs v1 URL...   @modelcontextprotocol/sdk 1.x (2025 session lane)
//   node smoke.mjs v2 URL...   @modelcontextprotocol/client 2.x, versionNegotiation auto
//
// Each gateway gets: connect, list tools, a plain call (echo), a call with progress
// (slow_count), an elicitation answered by the client's handler (test_elicitation on v1, the
// MRTR fixture on v2), a resource read and a prompt.

const [mode, ...urls] = process.argv.slice(2);

async function clientFor(url) {
  const capabilities = { elicitation: {} };
  if (mode === 'v1') {
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    const { ElicitRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
    const client = new Client({ name: 'mcpbus-ts-v1', version: '0' }, { capabilities });
    client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { username: 'ts', email: 'ts@example.com' } }));
    const transport = new StreamableHTTPClientTransport(new URL(url));
    await client.connect(transport);
    return { client, version: () => transport.protocolVersion, elicitTool: ['test_elicitation', { message: 'who?' }] };
  }
  const { Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
  const client = new Client({ name: 'mcpbus-ts-v2', version: '0' }, { capabilities, versionNegotiation: { mode: 'auto' } });
  client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { name: 'ts' } }));
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return { client, version: () => client.getNegotiatedProtocolVersion(), elicitTool: ['test_input_required_result_elicitation', {}] };
}

const text = (r) => (r.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('');

for (const url of urls) {
  const { client, version, elicitTool } = await clientFor(url);
  const tools = await client.listTools();
  const echo = await client.callTool({ name: 'echo', arguments: { text: `hi ${mode}` } });
  let progress = 0;
  const options = { onprogress: () => { progress += 1; } };
  const counting = { name: 'slow_count', arguments: { n: 3, interval_ms: 20 } };
  // v1 takes a result schema before the options; v2 does not.
  const counted = mode === 'v1'
    ? await client.callTool(counting, undefined, options)
    : await client.callTool(counting, options);
  const elicited = await client.callTool({ name: elicitTool[0], arguments: elicitTool[1] });
  const resource = await client.readResource({ uri: 'test://static-text' });
  const prompt = await client.getPrompt({ name: 'test_simple_prompt' });
  console.log(JSON.stringify({
    url,
    version: version(),
    tools: tools.tools.length,
    echo: text(echo),
    progress,
    count: counted.structuredContent?.count,
    elicited: text(elicited),
    resource: resource.contents?.[0]?.text,
    prompt: prompt.messages?.[0]?.content?.text,
  }));
  await client.close();
}
