export { nodeFetch } from './node-fetch.js';
