// An Apollo Gateway in front of running subgraphs, for the federation interop test.
//
//   node gateway.mjs --port 4000 \
//     --subgraph users=http://127.0.0.1:8001/socialink/graphql \
//     --subgraph media=http://127.0.0.1:8002/socialink/graphql \
//     [--supergraph supergraph.graphql]
//
// Without --supergraph the gateway fetches each subgraph's SDL (`_service { sdl }`)
// and composes them itself (IntrospectAndCompose); with it, it serves that static
// supergraph. Listens on 127.0.0.1 only, forwards the Authorization header, and
// prints "gateway ready at URL" once it answers.
import { readFileSync } from "node:fs";
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";

function usage(message) {
  console.error(`gateway.mjs: ${message}`);
  console.error("usage: node gateway.mjs --port PORT --subgraph NAME=URL... [--supergraph FILE]");
  process.exit(2);
}

function parseArgs(argv) {
  const options = { port: null, subgraphs: [], supergraph: null };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (argv[i] === "--port") options.port = Number(value);
    else if (argv[i] === "--supergraph") options.supergraph = value;
    else if (argv[i] === "--subgraph") {
      const at = (value ?? "").indexOf("=");
      if (at <= 0) usage(`expected NAME=URL, got ${value}`);
      options.subgraphs.push({ name: value.slice(0, at), url: value.slice(at + 1) });
    } else usage(`unknown argument ${argv[i]}`);
    i++;
  }
  if (!Number.isInteger(options.port)) usage("--port is required");
  if (options.subgraphs.length === 0) usage("at least one --subgraph is required");
  return options;
}

class ForwardAuthorization extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (context?.authorization) request.http.headers.set("authorization", context.authorization);
  }
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const urls = Object.fromEntries(options.subgraphs.map(({ name, url }) => [name, url]));
  const gateway = new ApolloGateway({
    ...(options.supergraph
      ? { supergraphSdl: readFileSync(options.supergraph, "utf8") }
      : { supergraphSdl: new IntrospectAndCompose({ subgraphs: options.subgraphs }) }),
    // a static supergraph names placeholder URLs: point each subgraph at its real one
    buildService: ({ name, url }) => new ForwardAuthorization({ url: urls[name] ?? url }),
  });
  const server = new ApolloServer({ gateway, includeStacktraceInErrorResponses: false });
  const { url } = await startStandaloneServer(server, {
    listen: { host: "127.0.0.1", port: options.port },
    context: async ({ req }) => ({ authorization: req.headers.authorization }),
  });
  console.log(`gateway ready at ${url}`);
  const stop = async () => {
    await server.stop();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((error) => {
  console.error(`gateway failed: ${error?.stack ?? error}`);
  process.exit(1);
});
