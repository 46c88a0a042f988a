// Compose subgraph SDLs with Apollo Federation's own composition library.
//
//   node compose.mjs users=users.graphql media=media.graphql   # files
//   echo '{"users": "<sdl>", "media": "<sdl>"}' | node compose.mjs -   # JSON on stdin
//
// Prints the composed API schema (what clients of a router see) on stdout.
// Options: --supergraph FILE also writes the supergraph SDL (for a gateway or
// router); --hints prints composition hints on stderr.
// Exits 1 on any composition error (each printed on stderr), 2 on bad usage.
import { readFileSync, writeFileSync } from "node:fs";
import { composeServices } from "@apollo/composition";
import { parse, printSchema } from "graphql";

function usage(message) {
  console.error(`compose.mjs: ${message}`);
  console.error("usage: node compose.mjs [--supergraph FILE] [--hints] (NAME=FILE... | -)");
  process.exit(2);
}

function readInputs(args) {
  if (args.length === 1 && args[0] === "-") {
    const parsed = JSON.parse(readFileSync(0, "utf8"));
    return Object.entries(parsed).map(([name, sdl]) => ({ name, sdl }));
  }
  if (args.length === 0) usage("no subgraphs given");
  return args.map((arg) => {
    const at = arg.indexOf("=");
    if (at <= 0) usage(`expected NAME=FILE, got ${arg}`);
    return { name: arg.slice(0, at), sdl: readFileSync(arg.slice(at + 1), "utf8") };
  });
}

function main(argv) {
  let supergraphFile = null;
  let hints = false;
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--supergraph") supergraphFile = argv[++i] ?? usage("--supergraph needs a file");
    else if (argv[i] === "--hints") hints = true;
    else rest.push(argv[i]);
  }
  const services = readInputs(rest).map(({ name, sdl }) => ({
    name,
    // composition needs a URL per subgraph; the gateway is given the real ones
    url: `http://subgraph.invalid/${name}`,
    typeDefs: parse(sdl),
  }));
  const result = composeServices(services);
  if (result.errors && result.errors.length > 0) {
    for (const error of result.errors) {
      console.error(`composition error${error.extensions?.code ? ` ${error.extensions.code}` : ""}: ${error.message}`);
    }
    process.exit(1);
  }
  if (hints) for (const hint of result.hints ?? []) console.error(`hint: ${hint.toString()}`);
  if (supergraphFile) writeFileSync(supergraphFile, result.supergraphSdl);
  process.stdout.write(printSchema(result.schema.toAPISchema().toGraphQLJSSchema()) + "\n");
}

main(process.argv.slice(2));
