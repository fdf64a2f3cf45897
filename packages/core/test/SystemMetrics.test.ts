import { Effect } from "effect"
import { spawn } from "node:child_process"
import { describe, expect, it } from "vitest"
import { gpuMetrics, makeSystemSampler, parseNvidiaSmiCsv } from "../src/SystemMetrics.ts"

// What `nvidia-smi --query-gpu=index,uuid,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits`
// prints on a two-GPU host, the second GPU reporting a field as unsupported (as MIG slices do). Written in
// nvidia-smi's format, not captured: the machine these tests were written on has no GPU.
const captured = "0, GPU-5b0c1e2a-8f3d-4a7e-9c61-2d4f8e9a0b13, 87, 40536, 81559\n1, GPU-a1e47f30-6c2b-4d59-8e0f-7b3c9d2e1f48, [N/A], 4, 81559\n"

describe("system metrics", () => {
  it("parses nvidia-smi's CSV and names the GPUs the stage holds as MLflow does", () => {
    expect(parseNvidiaSmiCsv(captured)).toEqual([
      { index: "0", uuid: "GPU-5b0c1e2a-8f3d-4a7e-9c61-2d4f8e9a0b13", utilizationPercent: 87, memoryUsedMiB: 40536, memoryTotalMiB: 81559 },
      { index: "1", uuid: "GPU-a1e47f30-6c2b-4d59-8e0f-7b3c9d2e1f48", utilizationPercent: undefined, memoryUsedMiB: 4, memoryTotalMiB: 81559 }
    ])
    expect(parseNvidiaSmiCsv("No devices were found\n")).toEqual([])
    const held = gpuMetrics(parseNvidiaSmiCsv(captured), ["1"])
    expect(held).toEqual({
      "system/gpu_1_memory_usage_megabytes": (4 * 1024 * 1024) / 1e6,
      "system/gpu_1_memory_usage_percentage": (4 / 81559) * 100
    })
    // CUDA_VISIBLE_DEVICES may name a GPU by UUID
    expect(Object.keys(gpuMetrics(parseNvidiaSmiCsv(captured), ["GPU-5b0c1e2a-8f3d-4a7e-9c61-2d4f8e9a0b13"]))).toEqual([
      "system/gpu_0_utilization_percentage",
      "system/gpu_0_memory_usage_megabytes",
      "system/gpu_0_memory_usage_percentage"
    ])
    const all = gpuMetrics(parseNvidiaSmiCsv(captured), undefined)
    expect(all["system/gpu_0_utilization_percentage"]).toBe(87)
    expect(all["system/gpu_0_memory_usage_megabytes"]).toBeCloseTo(42505.1, 1)
  })

  it("samples CPU, memory and the stage process's RSS; a missing nvidia-smi adds nothing", async () => {
    // a busy child process: its RSS is read from /proc, and the CPU it burns shows in the host CPU %
    const child = spawn(process.execPath, ["-e", "const a = Buffer.alloc(64e6, 1); const end = Date.now() + 1500; while (Date.now() < end) a[0]++"], { stdio: "ignore" })
    try {
      const sampler = makeSystemSampler({ pid: child.pid!, gpus: ["0"], nvidiaSmi: "/nonexistent/nvidia-smi" })
      await new Promise((resolve) => setTimeout(resolve, 700))
      const sample = await Effect.runPromise(sampler.sample)
      expect(Object.keys(sample).sort()).toEqual([
        "system/cpu_utilization_percentage",
        "system/process_rss_megabytes",
        "system/system_memory_usage_megabytes",
        "system/system_memory_usage_percentage"
      ])
      expect(sample["system/process_rss_megabytes"]).toBeGreaterThan(64)
      expect(sample["system/cpu_utilization_percentage"]).toBeGreaterThan(0)
      expect(sample["system/cpu_utilization_percentage"]).toBeLessThanOrEqual(100)
      expect(sample["system/system_memory_usage_percentage"]).toBeGreaterThan(0)
    } finally {
      child.kill()
    }
  })
})
