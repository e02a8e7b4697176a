import t from 'tap'
import { createLogger } from '../../src/ops/logger.js'
import { AdminApiGuard, isOryNotFound, judgeProofAnswer, type AdminApiProof, type ProofAnswer } from '../../src/ory/admin-proof.js'
import { captureLines, eventually } from '../helper.js'

const json = (status: number, body: unknown): ProofAnswer => ({ status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(body) })
const goNotFound: ProofAnswer = { status: 404, contentType: 'text/plain; charset=utf-8', body: '404 page not found\n' }

t.test('an admin URL is proven only by the JSON list its admin route gives', async (t) => {
  t.same(judgeProofAnswer('kratos', 'http://kratos:4434', json(200, [])), { state: 'proven' })
  t.same(judgeProofAnswer('hydra', 'http://hydra:4445/', json(200, [{ client_id: 'a' }])), { state: 'proven' })
  const prefixed = judgeProofAnswer('kratos', 'http://kratos:4434/admin', goNotFound)
  t.equal(prefixed.state, 'wrong')
  t.match(prefixed, { fix: /remove the path "\/admin" from KRATOS_ADMIN_URL/ })
  t.match(judgeProofAnswer('kratos', 'http://kratos:4433', goNotFound), { state: 'wrong', fix: /not the public port/ })
  t.match(judgeProofAnswer('hydra', 'http://hydra:4445', json(401, { error: 'unauthorized' })), { state: 'wrong', fix: /HYDRA_ADMIN_TOKEN/ })
  t.match(judgeProofAnswer('kratos', 'http://ui:4455', { status: 200, contentType: 'text/html', body: '<html>' }), { state: 'wrong', reason: /not with the JSON list/ })
  t.match(judgeProofAnswer('kratos', 'http://kratos:4434', json(200, { error: 'x' })), { state: 'wrong' }, 'JSON, but no list')
  t.match(judgeProofAnswer('kratos', 'http://kratos:4434', { status: 302, contentType: undefined, body: '' }), { state: 'wrong', reason: /redirect/ })
  for (const status of [500, 502, 503, 429, 408]) {
    t.equal(judgeProofAnswer('kratos', 'http://kratos:4434', json(status, {})).state, 'unreachable', `${status} says nothing about the URL`)
  }
})

t.test("a 404 means 'nothing there' only when it is Ory's own JSON error", async (t) => {
  t.equal(isOryNotFound(json(404, { error: { code: 404, status: 'Not Found', message: 'Unable to locate the resource' } })), true)
  t.equal(isOryNotFound(goNotFound), false, "Go's router: the route does not exist")
  t.equal(isOryNotFound({ status: 404, contentType: 'text/html', body: '<h1>Not Found</h1>' }), false, "a proxy's page")
  t.equal(isOryNotFound(json(404, { message: 'not found' })), false, 'JSON of another shape')
  t.equal(isOryNotFound(json(204, {})), false)
})

function guard (answers: Array<ProofAnswer | Error>, overrides: { failingIntervalMs?: number } = {}) {
  const lines: string[] = []
  const changes: AdminApiProof[] = []
  let probes = 0
  const instance = new AdminApiGuard({
    service: 'kratos',
    adminUrl: 'http://kratos:4434/admin',
    probe: async () => {
      const answer = answers[Math.min(probes++, answers.length - 1)]
      if (answer instanceof Error) throw answer
      return answer as ProofAnswer
    },
    log: createLogger('info', captureLines(lines)),
    failingIntervalMs: 30,
    provenIntervalMs: 60_000,
    ...overrides,
    onChange: (proof) => changes.push(proof)
  })
  return { instance, lines, changes, probes: () => probes }
}

t.test('a wrong URL is said in an error log and a change, proven again on schedule, and let through once fixed', async (t) => {
  const { instance, lines, changes } = guard([goNotFound, goNotFound, goNotFound, json(200, [])])
  t.teardown(() => instance.stop())
  instance.start()
  t.equal((await instance.current()).state, 'wrong')
  t.ok(await eventually(async () => (await instance.current()).state === 'proven', 2000), 'proven again once the URL answers')
  t.same(changes.map((change) => change.state), ['wrong', 'proven'])
  await eventually(() => lines.length >= 2)
  const logged = lines.map((line) => JSON.parse(line) as { level: number, msg: string, fix?: string })
  t.equal(logged.filter((line) => line.level === 50).length, 1, 'one error while it stays wrong, not one per probe')
  t.match(logged[0]?.msg, /KRATOS_ADMIN_URL is not Kratos' admin API: revocations there wait in the queue/)
  t.match(logged[0]?.fix, /remove the path "\/admin"/)
  t.match(logged.at(-1)?.msg, /answers Kratos' admin API again/)
})

t.test('no answer is unreachable, not wrong; a suspect answer proves again at once', async (t) => {
  const { instance, probes } = guard([new Error('ECONNREFUSED'), json(200, []), goNotFound], { failingIntervalMs: 60_000 })
  t.teardown(() => instance.stop())
  t.match(await instance.prove(), { state: 'unreachable', reason: /ECONNREFUSED/ })
  t.same(await instance.prove(), { state: 'proven' })
  instance.suspect()
  t.ok(await eventually(async () => (await instance.current()).state === 'wrong', 1000), 'a contradicting answer re-proves')
  t.equal(probes(), 3)
})
