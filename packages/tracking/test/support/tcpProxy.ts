/**
 * A TCP proxy in front of the MLflow server, for the failures a driver meets on a real network:
 *  - `stallAfter`: once a request carrying this marker has passed on a connection, the server's answers on
 *    that connection are withheld: the request reaches the server and takes effect, its response never
 *    reaches the client (what a driver killed with -9 while its `runs/create` is in flight leaves behind);
 *  - `refuse(true)`: new and open connections are dropped, as when the server is down, until `refuse(false)`.
 */
import * as net from "node:net"

export interface TcpProxy {
  readonly url: string
  readonly refuse: (on: boolean) => void
  readonly close: () => Promise<void>
}

export const tcpProxy = async (target: string, options: { readonly stallAfter?: string } = {}): Promise<TcpProxy> => {
  const { hostname, port } = new URL(target)
  const marker = options.stallAfter
  const sockets = new Set<net.Socket>()
  let refusing = false
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy()
      return
    }
    const upstream = net.connect(Number(port), hostname)
    sockets.add(client).add(upstream)
    let seen = ""
    let stalled = false
    client.on("data", (chunk: Buffer) => {
      if (marker !== undefined) {
        // keep a tail so a marker split across two chunks is still seen
        seen = (seen + chunk.toString("latin1")).slice(-(chunk.length + marker.length))
        if (seen.includes(marker)) stalled = true
      }
      upstream.write(chunk)
    })
    upstream.on("data", (chunk: Buffer) => {
      if (!stalled) client.write(chunk)
    })
    const closeBoth = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on("close", closeBoth).on("error", closeBoth)
    upstream.on("close", closeBoth).on("error", closeBoth)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address() as net.AddressInfo
  return {
    url: `http://127.0.0.1:${address.port}`,
    refuse: (on) => {
      refusing = on
      if (on) for (const s of sockets) s.destroy()
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      })
  }
}
