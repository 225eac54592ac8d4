import { newQuickJSWASMModuleFromVariant, shouldInterruptAfterDeadline } from "quickjs-emscripten-core";
import variant from "@jitl/quickjs-wasmfile-release-sync";
const Q = await newQuickJSWASMModuleFromVariant(variant);
for (const code of ["let a=[]; while(true) a.push('x'.repeat(1e6)+Math.random())", "let a=[]; while(true) a.push(new Array(1e5).fill(1))", "let s='x'; while(true) s = s + s"]) {
  const rt = Q.newRuntime(); rt.setMemoryLimit(256*1024*1024); rt.setInterruptHandler(shouldInterruptAfterDeadline(Date.now()+5000));
  const vm = rt.newContext(); const t = performance.now();
  const r = vm.evalCode(code);
  console.log(Math.round(performance.now()-t), r.error ? JSON.stringify(vm.dump(r.error)) : "ok");
  r.error?.dispose(); vm.dispose(); try { rt.dispose() } catch (e) { console.log("dispose", e.message) }
}
