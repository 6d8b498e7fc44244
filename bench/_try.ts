import { drain } from "./drain";
console.log(JSON.stringify(await drain(1300, 600, 1000)));
