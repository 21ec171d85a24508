// Sends one event of every Segment call type to eventrelay with the official
// @segment/analytics-node client, in one batch, then closeAndFlush().
// usage: node send_all.mjs <host e.g. http://127.0.0.1:8088> <writeKey> <runId>
// Exit code 0 when every batch was answered 2xx; prints each HTTP status to stdout.
import { Analytics } from '@segment/analytics-node'

const [host, writeKey, runId] = process.argv.slice(2)
if (!host || !writeKey || !runId) {
  console.error('usage: node send_all.mjs <host> <writeKey> <runId>')
  process.exit(2)
}

const analytics = new Analytics({ writeKey, host, flushAt: 20, flushInterval: 200, maxRetries: 1 })
let failed = false
analytics.on('error', (err) => {
  failed = true
  console.error(`error: ${err.code ?? ''} ${err.reason ?? err.message ?? err}`)
})
analytics.on('http_request', (req) => console.log(`request ${req.method} ${req.url}`))

const userId = `node-user-${runId}`
const props = { runId, total: 42.5, items: ['a', 'b'] }
analytics.identify({ userId, traits: { plan: 'pro', runId } })
analytics.track({ userId, event: 'Node Order Completed', properties: props })
analytics.page({ userId, name: 'Home', category: 'Docs', properties: { runId } })
analytics.screen({ userId, name: 'Cart', properties: { runId } })
analytics.group({ userId, groupId: `group-${runId}`, traits: { name: 'Acme', runId } })
analytics.alias({ userId, previousId: `anon-${runId}` })

await analytics.closeAndFlush({ timeout: 20000 })
process.exit(failed ? 1 : 0)
