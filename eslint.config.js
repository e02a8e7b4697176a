import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', '.tap/**'] }),
  {
    // The environment is read by the entrypoints alone; everything below takes its configuration as arguments.
    files: ['src/**/*.ts'],
    ignores: ['src/server.ts', 'src/cli.ts', 'src/healthcheck.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'read the environment in an entrypoint (loadConfig(process.env)) and pass what is needed down' }]
    }
  }
]
