import CamvidCLI

await Camvid.runFromCommandLine()
