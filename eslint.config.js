// ESLint for the page's ES modules: no build step, so what is linted is what the browser runs.
import js from "@eslint/js";

// The browser's globals the page uses, by hand (no `globals` package to pin); Plotly comes
// from the <script> tag in index.html.
const browser = Object.fromEntries([
  "window", "document", "location", "history", "console", "performance", "fetch",
  "setTimeout", "clearTimeout", "setInterval", "clearInterval", "requestAnimationFrame",
  "localStorage", "URL", "URLSearchParams", "FormData", "Blob", "TextDecoder", "Image",
  "ImageData", "Option", "getComputedStyle", "Plotly",
].map((name) => [name, "readonly"]));

export default [
  js.configs.recommended,
  {
    files: ["frontend/js/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: browser },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "no-unused-vars": ["error", { args: "after-used", argsIgnorePattern: "^_", caughtErrors: "none" }],
      eqeqeq: ["error", "smart"],
      "prefer-const": "error",
      "no-var": "error",
      "no-throw-literal": "error",
      "no-self-compare": "error",
      "no-unmodified-loop-condition": "error",
      "no-promise-executor-return": "error",
      // a callback may name a view made further down (it runs later); a use above its
      // declaration in the same scope is still an error
      "no-use-before-define": ["error", { functions: false, classes: true, variables: false }],
    },
  },
];
