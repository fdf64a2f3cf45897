/**
 * Per-stage system metrics under the names MLflow's own monitor uses (mlflow/system_metrics/metrics/
 * cpu_monitor.py and gpu_monitor.py in MLflow 3.17), so MLflow's "System metrics" charts show them:
 *   system/cpu_utilization_percentage        host CPU busy %, since the previous sample
 *   system/system_memory_usage_megabytes     host memory in use (MB = 1e6 bytes, as MLflow)
 *   system/system_memory_usage_percentage
 *   system/process_rss_megabytes             resident memory of the process running the stage (vw2's addition)
 *   system/gpu_<i>_utilization_percentage    per GPU the stage holds, from `nvidia-smi` when it exists
 *   system/gpu_<i>_memory_usage_megabytes
 *   system/gpu_<i>_memory_usage_percentage
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import { Effect } from "effect"

export interface GpuSample {
  readonly index: string
  readonly uuid: string
  readonly utilizationPercent: number | undefined
  readonly memoryUsedMiB: number | undefined
  readonly memoryTotalMiB: number | undefined
}

/** The fields `gpuQueryArgs` asks for, in order. */
export const gpuQueryArgs = ["--query-gpu=index,uuid,utilization.gpu,memory.used,memory.total", "--format=csv,noheader,nounits"] as const

/** Parses `nvidia-smi` output for `gpuQueryArgs`; "[N/A]" / "[Not Supported]" fields become undefined. */
export const parseNvidiaSmiCsv = (text: string): Array<GpuSample> =>
  text.split("\n").flatMap((line) => {
    const fields = line.split(",").map((f) => f.trim())
    if (fields.length < 5 || !/^\d+$/.test(fields[0]!)) return []
    const num = (f: string) => {
      const value = Number(f)
      return f === "" || !Number.isFinite(value) ? undefined : value
    }
    return [{ index: fields[0]!, uuid: fields[1]!, utilizationPercent: num(fields[2]!), memoryUsedMiB: num(fields[3]!), memoryTotalMiB: num(fields[4]!) }]
  })

/** MLflow's metric names for the GPUs in `samples` that the stage holds, by index or UUID as CUDA_VISIBLE_DEVICES
 * names them (all of them when `gpus` is undefined). */
export const gpuMetrics = (samples: ReadonlyArray<GpuSample>, gpus: ReadonlyArray<string> | undefined): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const gpu of samples) {
    if (gpus !== undefined && !gpus.includes(gpu.index) && !gpus.includes(gpu.uuid)) continue
    const prefix = `system/gpu_${gpu.index}`
    if (gpu.utilizationPercent !== undefined) out[`${prefix}_utilization_percentage`] = gpu.utilizationPercent
    if (gpu.memoryUsedMiB !== undefined) out[`${prefix}_memory_usage_megabytes`] = (gpu.memoryUsedMiB * 1024 * 1024) / 1e6
    if (gpu.memoryUsedMiB !== undefined && gpu.memoryTotalMiB !== undefined && gpu.memoryTotalMiB > 0) {
      out[`${prefix}_memory_usage_percentage`] = (gpu.memoryUsedMiB / gpu.memoryTotalMiB) * 100
    }
  }
  return out
}

// nvidia-smi is looked for once per process: on a machine without it every stage would otherwise spawn a failing command.
let nvidiaSmiMissing = false

const queryGpus = (command: string): Effect.Effect<Array<GpuSample>> =>
  nvidiaSmiMissing
    ? Effect.succeed([])
    : Effect.callback<Array<GpuSample>>((resume) => {
      const child = execFile(command, gpuQueryArgs, { timeout: 5_000, encoding: "utf8" }, (error, stdout) => {
        if (error !== null && (error as NodeJS.ErrnoException).code === "ENOENT") nvidiaSmiMissing = true
        resume(Effect.succeed(error === null ? parseNvidiaSmiCsv(stdout) : []))
      })
      return Effect.sync(() => child.kill())
    })

const cpuTimes = () =>
  os.cpus().reduce((acc, cpu) => {
    const t = cpu.times
    return { busy: acc.busy + t.user + t.nice + t.sys + t.irq, total: acc.total + t.user + t.nice + t.sys + t.irq + t.idle }
  }, { busy: 0, total: 0 })

/** Resident memory of `pid` in bytes (Linux /proc; this process's own through Node elsewhere). */
const rssBytes = (pid: number): number | undefined => {
  if (pid === process.pid) return process.memoryUsage.rss()
  try {
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]
    return kb === undefined ? undefined : Number(kb) * 1024
  } catch {
    return undefined
  }
}

export interface SystemSamplerOptions {
  /** the process running the stage (a worker, or the driver for in-process executors) */
  readonly pid?: number
  /** GPU ids the stage holds (as in CUDA_VISIBLE_DEVICES); no GPU metrics when empty */
  readonly gpus: ReadonlyArray<string>
  /** default "nvidia-smi" (on PATH) */
  readonly nvidiaSmi?: string
}

/**
 * A sampler whose first `sample` reports CPU use since the sampler was made, and each later one since the
 * previous sample (like psutil.cpu_percent() in MLflow's monitor).
 */
export const makeSystemSampler = (options: SystemSamplerOptions): { readonly sample: Effect.Effect<Record<string, number>> } => {
  let previous = cpuTimes()
  return {
    sample: Effect.gen(function*() {
      const now = cpuTimes()
      const dTotal = now.total - previous.total
      const cpu = dTotal > 0 ? ((now.busy - previous.busy) / dTotal) * 100 : 0
      previous = now
      const used = os.totalmem() - os.freemem()
      const out: Record<string, number> = {
        "system/cpu_utilization_percentage": Math.round(cpu * 10) / 10,
        "system/system_memory_usage_megabytes": used / 1e6,
        "system/system_memory_usage_percentage": (used / os.totalmem()) * 100
      }
      const rss = options.pid === undefined ? undefined : rssBytes(options.pid)
      if (rss !== undefined) out["system/process_rss_megabytes"] = rss / 1e6
      if (options.gpus.length > 0) Object.assign(out, gpuMetrics(yield* queryGpus(options.nvidiaSmi ?? "nvidia-smi"), options.gpus))
      return out
    })
  }
}
