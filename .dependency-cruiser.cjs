/**
 * The architecture, checked on every `npm test`: no import cycles, and dependencies that point down.
 *
 *   entrypoints (server, cli, healthcheck) → app (wiring) → http → usecases → token, store, ory
 *                                                          revocation → store, ory
 *   ops (metrics, logger, doctor) is used by the wiring and the routes, and uses the layers below.
 */
const CORE = '^src/(usecases|token|store|revocation|ory)/'

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: one of the modules must not know the other.',
      from: {},
      to: { circular: true }
    },
    {
      name: 'core-is-framework-free',
      severity: 'error',
      comment: 'The core takes its dependencies as arguments; it knows neither Fastify nor the HTTP side.',
      from: { path: CORE },
      to: { path: ['^node_modules/(fastify|@fastify/|fastify-plugin)', '^src/http/', '^src/app\\.ts$'] }
    },
    {
      name: 'only-the-wiring-knows-the-app',
      severity: 'error',
      comment: 'Routes get what they use from the Fastify instance (app.relay), never from app.ts.',
      from: { path: '^src/', pathNot: '^src/(server|cli)\\.ts$' },
      to: { path: '^src/app\\.ts$' }
    },
    {
      name: 'entrypoints-are-not-imported',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli\\.ts$' },
      to: { path: '^src/(server|cli|healthcheck)\\.ts$' }
    },
    {
      name: 'lower-layers-do-not-reach-up',
      severity: 'error',
      comment: 'store, token and ory are the floor: they import nothing of the layers above them.',
      from: { path: '^src/(store|token|ory)/' },
      to: { path: '^src/(usecases|revocation|ops|http)/' }
    },
    {
      name: 'usecases-do-not-run-jobs',
      severity: 'error',
      from: { path: '^src/usecases/' },
      to: { path: '^src/(revocation|ops)/' }
    },
    {
      name: 'no-test-code-in-src',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] }
  }
}
