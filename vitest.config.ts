import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // tfjs keeps a global engine per thread, and wasm is single-threaded: forks keep files apart.
    pool: 'forks',
  },
});
